"""Integrations at the edges of asyncgroups, each imported by path, none re-exported.

- `asyncgroups.contrib.jsonable`: models as plain JSON-ready dicts (no extra needed),
  the one encoding shared by the command line and web apps.
- `asyncgroups.contrib.starlette`: one `GroupsClient` for a Starlette or FastAPI app's
  life, handed to endpoints (needs the `starlette` extra).
"""

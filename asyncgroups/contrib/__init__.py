"""Integrations at the edges of asyncgroups, each imported by path, none re-exported.

- `asyncgroups.contrib.jsonable`: models as plain JSON-ready dicts (no extra needed),
  the one encoding shared by the command line and web apps.
- `asyncgroups.contrib.starlette`: one `GroupsClient` for a Starlette or FastAPI app's
  life, handed to endpoints, and its errors as HTTP answers (needs the `starlette` extra).
- `asyncgroups.contrib.redis`: `RedisLimiter`, one rate limit and one 429 cool-down
  shared by every process on an account (needs the `redis` extra).
"""

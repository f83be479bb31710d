"""A fake Groups API server and pytest fixtures for testing code that uses asyncgroups.

`FakeGroupsServer` is a real HTTP server on 127.0.0.1 that follows the API's
documentation and breaks on demand (`Faults`, `FakeGroupsServer.inject`). The pytest
plugin (`asyncgroups.testing.plugin`, registered through `pytest11`) provides the
`fake_groups_server` and `groups_client` fixtures.
"""

from ._faults import Faults, Injection
from ._server import FakeGroupsServer, RecordedRequest

__all__ = ["FakeGroupsServer", "Faults", "Injection", "RecordedRequest"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

"""A fake Groups API server and pytest fixtures for testing code that uses asyncgroups.

`FakeGroupsServer` is a real HTTP server on 127.0.0.1 that follows the API's
documentation and breaks on demand (`Faults`, `FakeGroupsServer.inject`). The pytest
plugin (`asyncgroups.testing.plugin`, registered through `pytest11`) provides the
`fake_groups_server` and `groups_client` fixtures. `asyncgroups.testing.scenario`
(imported by path) runs real bulk work against the fake with faults on and proves it
(`check_sync`, the fault presets `asyncgroups demo` uses).
"""

from .. import _public
from ._faults import Faults, Injection
from ._server import FakeGroupsServer, RecordedRequest
from ._store import PAGE_SIZE

__all__ = ["PAGE_SIZE", "FakeGroupsServer", "Faults", "Injection", "RecordedRequest"]

_public.publish(globals(), __all__)

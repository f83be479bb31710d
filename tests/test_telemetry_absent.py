"""Without OpenTelemetry installed the client works as ever and imports nothing of it.

The test suite has opentelemetry installed, so a child process refuses it: a finder
first on `sys.meta_path` raises `ModuleNotFoundError` for `opentelemetry` and all under
it, as an environment without the package would. The child talks to the fake server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import asyncio
    import importlib.abc
    import json
    import sys


    class RefuseOpenTelemetry(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, RefuseOpenTelemetry())
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        refused = True
    else:
        refused = False

    from asyncgroups import GroupsClient, ValidationError
    from asyncgroups.testing import FakeGroupsServer


    async def main():
        async with FakeGroupsServer() as fake:
            keys = [fake.add_group(f"Group {i}") for i in range(3)]
            async with GroupsClient(
                api_key=fake.api_key, base_url=fake.url, rate_limit=None
            ) as client:
                got = await client.groups.get(keys[0])
                many = await client.groups.get_many(keys)
                streamed = [o async for o in client.groups.iter_many(keys)]
                listed = await client.groups.list()
                telemetry = client._pipeline.telemetry
            try:
                GroupsClient(api_key=fake.api_key, tracer_provider=object())
            except ValidationError as err:
                refusal = str(err)
            return {
                "refused": refused,
                "name": got.name,
                "ok": len(many.ok),
                "streamed": sum(o.ok for o in streamed),
                "listed": len(listed),
                "telemetry": telemetry is None,
                "traceparent": any("traceparent" in r.headers for r in fake.requests),
                "refusal": refusal,
                "imported": sorted(
                    m for m in sys.modules if m.split(".")[0] == "opentelemetry"
                ),
            }


    print(json.dumps(asyncio.run(main())))
    """
)


def test_telemetry_absent_client_works_and_imports_nothing_of_opentelemetry() -> None:
    child = subprocess.run(  # noqa: S603 - this interpreter, the script above
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout)
    assert seen == {
        "refused": True,
        "name": "Group 0",
        "ok": 3,
        "streamed": 3,
        "listed": 3,
        "telemetry": True,
        "traceparent": False,
        "refusal": "tracer_provider needs opentelemetry-api: pip install 'asyncgroups[otel]'",
        "imported": [],
    }

"""Every Python example of the README and of docs/ runs, against a local fake of the API.

The environment points the client at a `FakeGroupsServer` running on a thread of its
own, so an example written for the real API runs unchanged; each runs in a temporary
directory. A whole program (`asyncio.run(...)`) runs as it is. A fragment runs as the
body of a coroutine, with the names a reader's code would have ready: `client`,
`server`, `key`, `keys`, `rows`. A block defining `test_*` functions has each run with
the pytest plugin's fixtures. A ```` ```text title="Output" ```` block right after an
example is what it must print. CONTRIBUTING.md says the same for whoever writes one.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cli_support import cli, fake_api
from pytest_examples import CodeExample, find_examples

from asyncgroups import GroupsClient, RetryPolicy
from asyncgroups.testing import FakeGroupsServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    example
    for example in find_examples(ROOT / "README.md", ROOT / "docs")
    if example.prefix.split()[0] in {"python", "py"}
]
#: What an example's own output block looks like, right after the example's fence.
_OUTPUT = re.compile(r'\A```\n\s*```text title="Output"\n(.*?)```', re.DOTALL)
#: Quick retries for the fragments' `client`: a fault an example arms costs no waiting.
_QUICK = RetryPolicy(backoff_base=0.01, backoff_max=0.05)
#: A Redis an example names, replaced by the test's own.
_EXAMPLE_REDIS = "redis://redis.internal:6379/0"


def _example_id(example: CodeExample) -> str:
    return f"{example.path.relative_to(ROOT)}:{example.start_line}"


def _expected_output(example: CodeExample) -> str | None:
    """The text of the output block that follows the example, if one does."""
    text = example.path.read_text(encoding="utf-8")
    match = _OUTPUT.match(text[example.end_index :])
    return match.group(1) if match else None


@contextlib.contextmanager
def _fake_on_a_thread() -> Iterator[FakeGroupsServer]:
    """A started fake with three groups, serving from an event loop on its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def started() -> FakeGroupsServer:
        server = FakeGroupsServer()
        await server.start()
        for name in ("Team 7 trainings", "Team 9 matches", "Club events"):
            server.add_group(name)
        return server

    server = asyncio.run_coroutine_threadsafe(started(), loop).result(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """Whatever logging an example sets up is undone after it."""
    root, ours = logging.getLogger(), logging.getLogger("asyncgroups")
    handlers, level = list(root.handlers), ours.level
    try:
        yield
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
        ours.setLevel(level)


def _names(server: FakeGroupsServer) -> dict[str, Any]:
    keys = list(server.groups)
    rows = [SimpleNamespace(id=f"team-{n}", title=f"Team {n}", note="from the CRM") for n in (7, 9)]
    return {"server": server, "key": keys[0], "keys": keys, "rows": rows}


async def _run_fragment(code: Any, names: dict[str, Any]) -> None:
    """The example as the body of a coroutine, `client` open on the fake meanwhile."""
    server = names["server"]
    async with GroupsClient(api_key=server.api_key, base_url=server.url, retry=_QUICK) as client:
        names["client"] = client
        outcome = eval(code, names)  # noqa: S307 - the documentation's own example
        if inspect.iscoroutine(outcome):
            await outcome
        await _run_tests_defined(names)


async def _run_tests_defined(names: dict[str, Any]) -> None:
    """Each `test_*` coroutine the example defined, given the plugin's fixtures."""
    for name, function in list(names.items()):
        if name.startswith("test_") and inspect.iscoroutinefunction(function):
            async with _plugin_fixtures(function) as fixtures:
                await function(**fixtures)


@contextlib.asynccontextmanager
async def _plugin_fixtures(function: Any) -> AsyncIterator[dict[str, Any]]:
    """`fake_groups_server` (honouring the function's mark) and `groups_client`, as the
    plugin makes them, and `tmp_path`, for the parameters the function names."""
    options: dict[str, Any] = {}
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "fake_groups_server":
            options.update(mark.kwargs)
    async with (
        FakeGroupsServer(**options) as fake,
        GroupsClient(
            api_key=fake.api_key,
            base_url=fake.url,
            retry=RetryPolicy(backoff_base=0.01, backoff_max=0.1),
            rate_limit=None,
        ) as client,
    ):
        given = {"fake_groups_server": fake, "groups_client": client, "tmp_path": Path.cwd()}
        yield {name: given[name] for name in inspect.signature(function).parameters}


def _source(example: CodeExample, request: pytest.FixtureRequest) -> str:
    """The example's code, its Redis (if it names one) replaced by a local one."""
    if _EXAMPLE_REDIS not in example.source:
        return example.source
    redis = request.getfixturevalue("docs_redis")
    return example.source.replace(_EXAMPLE_REDIS, redis.url)


@pytest.fixture
def docs_redis(tmp_path: Path) -> Iterator[Any]:
    """A `redis-server` for the example of a shared limit (skipped, or failed under
    ASYNCGROUPS_REQUIRE_REDIS=1, without one, as the limiter's own tests are)."""
    from contrib.conftest import RedisServer, _redis_server_executable

    redis = RedisServer(_redis_server_executable(), tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


def test_docs_examples_are_found() -> None:
    pages = {example.path.name for example in EXAMPLES}
    assert {"README.md", "getting-started.md", "sync.md", "testing.md"} <= pages
    assert len(EXAMPLES) >= 20


def test_readme_is_a_short_front_door_with_its_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    demo = (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[cli]" && .venv/bin/asyncgroups demo'
    )
    tests = (
        'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test,cli]"'
        " && .venv/bin/python -m pytest"
    )
    assert demo in readme
    assert tests in readme


def test_site_nav_lists_every_page_once() -> None:
    """The strict build does not check the nav: a page left out of it, or listed but
    missing, is caught here."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    listed = re.findall(r"^  - [^:\n]+: (\S+\.md)$", config, re.MULTILINE)
    pages = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert sorted(listed) == pages


@pytest.mark.parametrize("example", EXAMPLES, ids=_example_id)
def test_docs_example_runs_against_the_fake(
    example: CodeExample,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Padded so that a traceback names the example's lines in its page; a fragment may
    # `await` at its top level, as in the coroutine it runs as.
    padded = "\n" * example.start_line + _source(example, request)
    code = compile(padded, str(example.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    monkeypatch.chdir(tmp_path)
    with _fake_on_a_thread() as server, _logging_kept():
        monkeypatch.setenv("ASYNCGROUPS_API_KEY", server.api_key)
        monkeypatch.setenv("ASYNCGROUPS_BASE_URL", server.url)
        names = {"__name__": "__main__", **_names(server)}
        if "asyncio.run(" in example.source:
            exec(code, names)  # noqa: S102 - the documentation's own program
        else:
            asyncio.run(_run_fragment(code, names))
    expected = _expected_output(example)
    if expected is not None:
        assert capsys.readouterr().out == expected


# The sync page's transcript ---------------------------------------------------------

#: A prokey as the transcript shows it: whole, or its first group and an ellipsis.
_SHOWN_PROKEY = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}|[0-9a-f]{8}-…")
#: A duration, which no two runs share.
_SHOWN_SECONDS = re.compile(r"in \d+(?:\.\d+)? s")


def _blocks(page: str, language: str, after: str) -> list[str]:
    """The fenced blocks of `language` in a docs page, from the heading `after` on."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8").split(f"\n{after}\n", 1)[1]
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def _commands(transcript: str) -> list[tuple[list[str], list[str]]]:
    """Each `$ asyncgroups ...` of a console block, with the lines it shows."""
    runs = []
    for chunk in transcript.split("$ asyncgroups ")[1:]:
        command, *shown = chunk.strip("\n").splitlines()
        runs.append((command.split(), shown))
    return runs


def _pattern(line: str, base_url: str) -> re.Pattern[str]:
    """A shown line as a pattern: any prokey where one is shown, any duration, the
    fake's URL for the service's, and the "y" typed at the question."""
    line = line.replace("https://api.add-to-calendar-pro.com/v1", base_url)
    parts = re.split(f"({_SHOWN_PROKEY.pattern}|{_SHOWN_SECONDS.pattern})", line)
    regex = "".join(
        "[0-9a-f-]{36}"
        if _SHOWN_PROKEY.fullmatch(part)
        else r"in \d+(?:\.\d+)? s"
        if _SHOWN_SECONDS.fullmatch(part)
        else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _answering_yes() -> io.StringIO:
    """A stdin that is a terminal on which "y" is typed."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    return Terminal("y\n")


async def _shown_by(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """What the command shows on a terminal: stdout's lines and stderr's, the answer
    typed at a question echoed as a terminal would."""
    monkeypatch.setattr(sys, "stdin", _answering_yes())
    run = await cli(capsys, *argv)
    assert run.code == 0, run.err
    shown = run.out.splitlines() + run.err.replace("[y/N] ", "[y/N] y\n").splitlines()
    return sorted(shown, key=lambda line: not line.startswith("{"))


async def test_sync_page_transcript_is_what_the_command_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [desired] = _blocks("sync.md", "jsonl", "## The desired state")
    first, renamed = _blocks(
        "sync.md", "console", "## Plan, apply, and a second run that does nothing"
    )[:2]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "desired.jsonl").write_text(desired, encoding="utf-8")
    async with fake_api(monkeypatch) as fake:
        for argv, expected in _commands(first):
            shown = await _shown_by(argv, capsys, monkeypatch)
            _assert_shown(shown, expected, fake.url)
        # "Now rename a team and drop `club-1` from the file":
        kept = [line for line in desired.splitlines() if '"club-1"' not in line]
        edited = "\n".join(kept).replace("Team 7 trainings", "Team 7 training sessions")
        (tmp_path / "desired.jsonl").write_text(edited + "\n", encoding="utf-8")
        [(argv, expected)] = _commands(renamed)
        _assert_shown(await _shown_by(argv, capsys, monkeypatch), expected, fake.url)


def _assert_shown(shown: list[str], expected: list[str], base_url: str) -> None:
    expected = sorted(expected, key=lambda line: not line.startswith("{"))
    assert len(shown) == len(expected), "\n".join(shown)
    for line, wanted in zip(shown, expected, strict=True):
        assert _pattern(wanted, base_url).fullmatch(line), f"{line!r} is not {wanted!r}"

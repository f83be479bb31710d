"""What the command-line tests share: a fake API the environment points at, and runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncgroups.cli import main
from asyncgroups.testing import FakeGroupsServer

__all__ = ["Run", "cli", "fake_api", "python_m", "start_python_m"]


@contextlib.asynccontextmanager
async def fake_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeGroupsServer]:
    """A fake API, with the environment pointing the command at it."""
    async with FakeGroupsServer() as fake:
        monkeypatch.setenv("ASYNCGROUPS_BASE_URL", fake.url)
        monkeypatch.setenv("ASYNCGROUPS_API_KEY", fake.api_key)
        monkeypatch.setenv("ASYNCGROUPS_RATE_LIMIT", "none")  # a local fake needs no pacing
        yield fake


class Run:
    """What one command run left: its exit code, stdout as JSON objects, stderr lines."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


async def python_m(*argv: str, stdin: bytes | None = None) -> Run:
    """Run `python -m asyncgroups` to completion (the event loop keeps serving meanwhile).

    `stdin` is piped in when given; otherwise the process's stdin is /dev/null.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncgroups",
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 20)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def start_python_m(*argv: str, sigint_ignored: bool = False) -> asyncio.subprocess.Process:
    """Start `python -m asyncgroups` with stdin on /dev/null and stdout, stderr piped.

    `sigint_ignored` starts it as a shell starts a background job (`cmd &` in a
    script): with SIGINT ignored, so that Ctrl-C at the terminal passes it by.
    """
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncgroups",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )

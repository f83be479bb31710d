"""What the command-line tests share: a fake API the environment points at, and runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncgroups.cli import main
from asyncgroups.testing import FakeGroupsServer

__all__ = ["Run", "cli", "fake_api"]


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

"""The Redis fixture's rule: skip without redis-server, unless CI requires it, then fail."""

from __future__ import annotations

import shutil

import pytest

from .conftest import _redis_server_executable


def test_missing_redis_server_skips_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("ASYNCGROUPS_REQUIRE_REDIS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install redis-server"):
        _redis_server_executable()


def test_missing_redis_server_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("ASYNCGROUPS_REQUIRE_REDIS", "1")
    with pytest.raises(pytest.fail.Exception, match="ASYNCGROUPS_REQUIRE_REDIS=1"):
        _redis_server_executable()

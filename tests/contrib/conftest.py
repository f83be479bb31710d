"""A real `redis-server` for the shared limiter's tests, started on a free port.

Without `redis-server` on PATH the tests that need one are skipped, saying why, unless
`ASYNCGROUPS_REQUIRE_REDIS=1` is set (CI sets it): then they fail, so CI can never pass
by skipping them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["RedisServer"]


class RedisServer:
    """One `redis-server` process on 127.0.0.1 that a test may stop and start again."""

    def __init__(self, executable: str, directory: Path) -> None:
        self._executable = executable
        self._directory = directory
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (on the same port as before) and wait until it answers PING."""
        self._process = subprocess.Popen(  # noqa: S603 - redis-server from PATH, fixed args
            [
                self._executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer within 10 s")

    def stop(self) -> None:
        """Stop it and wait until it is gone (its port then refuses connections)."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_server_executable() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        reason = (
            "redis-server is not installed (apt-get install redis-server); the shared "
            "limiter's tests need a real one"
        )
        if os.environ.get("ASYNCGROUPS_REQUIRE_REDIS") == "1":
            pytest.fail(f"ASYNCGROUPS_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)
    return executable


def _serve(tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(_redis_server_executable(), tmp)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole session; tests keep apart by limiter names of their own."""
    yield from _serve(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis for one test alone, which it may stop and start again."""
    yield from _serve(tmp_path)

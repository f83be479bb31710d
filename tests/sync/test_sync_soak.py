"""A randomized soak of `asyncgroups sync --apply`: killed, retried, copied and run twice.

Marked `slow` (not in the default run): `python -m pytest -m slow tests/sync/test_sync_soak.py`.
`ASYNCGROUPS_SOAK_SECONDS` sets how long the chaos phase runs (default 60) and
`ASYNCGROUPS_SOAK_SEED` its seed (default: a new one, printed so a failure replays).

Each round edits the desired file a little, then starts one or two real `sync --apply`
processes against one fake account that loses replies, answers 5xx, makes some creates
slower than the client's timeout and answers some reads 404 once. Most rounds kill
the processes with SIGKILL at a random moment; some replace the state with a copy of
the database file alone, as a CI cache or a backup would keep it. At the end the faults
stop and applies run until one ends cleanly: then every desired key is exactly one
group on the server, named as desired, owned by the state, and nothing else is there.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from asyncgroups.sync import SyncState
from asyncgroups.testing import FakeGroupsServer, Faults

pytestmark = pytest.mark.slow

API_KEY = "soak-key"
#: More than one page of the listing (800), so lookups and baselines cross pages.
KEYS = 820
#: The client's timeout in the apply processes: slow creates wait longer than this.
TIMEOUT = 0.4
#: Every 5th update costs a credit: enough that the soak never runs out (402).
CREDITS = 10**9
#: `sync --apply`'s exit status while a create waits out its landing window.
WAITING = 75
#: Longer than the landing window (at least 120 s after the last cut-off create).
SETTLE_SECONDS = 300
CHAOS_FAULTS = Faults(error_rate=0.02, reset_rate=0.01, lost_reply_rate=0.03, jitter=0.01)


def _desired_line(key: str, version: int) -> str:
    return json.dumps({"key": key, "name": f"soak {key} v{version}"})


class Desired:
    """The desired set the rounds edit: key -> version of its name; some keys dropped."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.versions = {f"k{number:04d}": 0 for number in range(KEYS)}
        self.dropped: set[str] = set()

    def edit(self) -> None:
        """Rename a few keys (updates), drop a few (prunes) and bring a few back."""
        live = sorted(set(self.versions) - self.dropped)
        for key in self.rng.sample(live, 5):
            self.versions[key] += 1
        self.dropped.update(self.rng.sample(live, 2))
        if self.dropped and self.rng.random() < 0.5:
            self.dropped.discard(self.rng.choice(sorted(self.dropped)))

    def names(self) -> dict[str, str]:
        return {
            key: f"soak {key} v{version}"
            for key, version in self.versions.items()
            if key not in self.dropped
        }

    def write(self, path: Path) -> None:
        lines = [
            _desired_line(key, version)
            for key, version in self.versions.items()
            if key not in self.dropped
        ]
        path.write_text("\n".join(lines) + "\n")


async def _start_apply(server: FakeGroupsServer, desired: Path, state: Path) -> Any:
    env = {**os.environ, "ASYNCGROUPS_API_KEY": API_KEY}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "asyncgroups", "sync",
        "--desired", str(desired), "--state", str(state), "--prune", "--apply", "--yes",
        "--base-url", server.url, "--timeout", str(TIMEOUT), "--rate-limit", "none",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip


async def _end(process: Any, *, kill_after: float | None) -> tuple[int, str]:
    """Wait for the process, or SIGKILL it after `kill_after` seconds; (code, stderr)."""
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout=kill_after)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # it ended as the time ran out
            process.send_signal(signal.SIGKILL)
        _, err = await process.communicate()
    return process.returncode, err.decode(errors="replace")


def _arm_trouble(server: FakeGroupsServer, rng: random.Random, state: Path) -> None:
    """One-shot trouble for the round: slow creates and a transient 404 on an owned group."""
    for _ in range(rng.randint(0, 3)):
        server.inject(delay=TIMEOUT * rng.uniform(1.5, 4.0), method="POST")
    owned = sorted(server.groups)
    if owned and rng.random() < 0.5:
        server.inject(status=404, method="GET", path="/group/" + rng.choice(owned))


async def _chaos_round(
    server: FakeGroupsServer, rng: random.Random, desired: Desired, paths: dict[str, Path]
) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()
    desired.edit()
    desired.write(paths["desired"])
    _arm_trouble(server, rng, paths["state"])
    runs = 2 if rng.random() < 0.2 else 1
    processes = [await _start_apply(server, paths["desired"], paths["state"]) for _ in range(runs)]
    kill_after = rng.uniform(0.2, 6.0) if rng.random() < 0.7 else None
    for process in processes:
        code, err = await _end(process, kill_after=kill_after)
        seen[f"exit {code}"] += 1
        assert "Traceback" not in err, err
        assert "bug in asyncgroups" not in err, err
    if rng.random() < 0.2:
        seen[_restore_a_copy(paths["state"], paths["copy"])] += 1
    return seen


def _restore_a_copy(state: Path, copy: Path) -> str:
    """Replace the state by a copy of it, as a CI cache or a backup keeps one: the file
    alone, or with its rollback journal when a kill cut a write short (the sync page's
    rule for such a copy). Nothing else beside it survives."""
    if not state.exists():  # killed before the first apply made it
        return "no state yet to copy"
    journal, copied_journal = Path(f"{state}-journal"), Path(f"{copy}-journal")
    shutil.copyfile(state, copy)
    kept = journal.exists()
    if kept:
        shutil.copyfile(journal, copied_journal)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    copy.replace(state)
    if kept:
        copied_journal.replace(journal)
    return "state copied with its journal" if kept else "state copied alone"


async def _settle(server: FakeGroupsServer, paths: dict[str, Path]) -> int:
    """Applies without faults until one exits 0; returns how many it took.

    A create that timed out or was cut off may still land, so it is decided only once
    its landing window has passed (exit 75 until then): the loop runs again until it is.
    """
    server.faults = Faults()
    loop = asyncio.get_running_loop()
    give_up = loop.time() + SETTLE_SECONDS
    attempts = 0
    while loop.time() < give_up:
        attempts += 1
        process = await _start_apply(server, paths["desired"], paths["state"])
        code, err = await _end(process, kill_after=None)
        if code == 0:
            return attempts
        assert code == WAITING or attempts < 5, f"exit {code}:\n{err}"
        await asyncio.sleep(5)
    raise AssertionError(f"sync never settled; last stderr:\n{err}")


def _check_account(server: FakeGroupsServer, desired: Desired, state_path: Path) -> None:
    names = desired.names()
    on_server = collections.Counter(fields["name"] for fields in server.groups.values())
    doubled = {name: count for name, count in on_server.items() if count > 1}
    assert not doubled, f"groups made twice: {doubled}"
    assert set(on_server) == set(names.values()), (
        f"missing {sorted(set(names.values()) - set(on_server))[:10]}, "
        f"extra {sorted(set(on_server) - set(names.values()))[:10]}"
    )
    with SyncState(state_path) as state:
        rows = state.rows()
    assert set(rows) == set(names)
    for key, row in rows.items():
        assert server.groups[row.prokey]["name"] == names[key]


async def test_sync_soak_every_key_exactly_once(tmp_path: Path) -> None:
    seconds = float(os.environ.get("ASYNCGROUPS_SOAK_SECONDS", "60"))
    seed = int(os.environ.get("ASYNCGROUPS_SOAK_SEED", str(random.randrange(2**32))))
    print(f"soak seed {seed}, {seconds:g} s")
    rng = random.Random(seed)
    desired = Desired(rng)
    paths = {
        "desired": tmp_path / "desired.jsonl",
        "state": tmp_path / "groups.sync.db",
        "copy": tmp_path / "copy.db",
    }
    seen: collections.Counter[str] = collections.Counter()
    async with FakeGroupsServer(
        API_KEY, seed=seed, faults=CHAOS_FAULTS, record=False, credits=CREDITS
    ) as server:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        rounds = 0
        while loop.time() < deadline:
            seen += await _chaos_round(server, rng, desired, paths)
            rounds += 1
        settled_after = await _settle(server, paths)
        print(f"{rounds} rounds, {dict(seen)}, settled after {settled_after} applies")
        _check_account(server, desired, paths["state"])

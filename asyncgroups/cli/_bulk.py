"""bulk-get and bulk-delete: many keys from a file or stdin, streamed, every key accounted for.

The runners (`read_many`, `delete_journaled`) are separate from the commands; the demo
drives `delete_journaled`, the very code of `bulk-delete`, to prove its journal. When
the API cannot serve (a refused key, a closed port, a shared limit out of reach) the
client stops sending and fails the keys not yet tried at once; every key still ends in
the journal or the `--failed` file, and stderr says each cause once with its count
(`_causes`), however many keys there were.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from .. import (
    AsyncGroupsError,
    Group,
    GroupsClient,
    NotFoundError,
    Outcome,
    ValidationError,
    validate_prokey,
)
from ._causes import Causes
from ._common import KeyOutcome, confirm_delete
from ._exits import FAILED, OK, CommandError, UsageError
from ._io import (
    JsonLines,
    UnprintableError,
    count_keys,
    is_terminal,
    open_keys,
    open_output,
    refuse_same_files,
    say,
)
from ._journal import Journal, read_journal
from ._progress import Bar, progress_bar
from ._settings import Settings, make_client
from ._signals import run_loop

__all__ = ["cmd_bulk_delete", "cmd_bulk_get", "delete_journaled", "read_many"]

#: Called once per key a delete run finishes: the key, how it ended, the error if any.
DeleteReport = Callable[[str, KeyOutcome, AsyncGroupsError | None], None]


async def read_many(
    client: GroupsClient,
    keys: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int,
    report: Callable[[Outcome[Group]], None],
) -> None:
    """Read every key, calling `report` with each outcome as it completes."""
    async with contextlib.aclosing(
        client.groups.iter_many(keys, concurrency=concurrency)
    ) as outcomes:
        async for outcome in outcomes:
            report(outcome)


async def delete_journaled(
    client: GroupsClient,
    keys: Iterable[str] | AsyncIterable[str],
    journal: Journal,
    *,
    concurrency: int,
    report: DeleteReport,
    causes: Causes | None = None,
) -> None:
    """Delete every key not done yet, journaling each outcome the moment it is known.

    A key the journal has as done (or seen earlier in this run) is reported `skipped`
    and not sent. At most `concurrency` deletes are in flight and only as many keys are
    pulled from `keys`. A key the client failed without sending it (it had stopped: a
    refused API key, say) is journaled `failed` with `not tried: <cause>`, so a re-run
    sends it. Each failure is counted in `causes` (a fresh `Causes` when not given),
    which words its journal record. A delete cancelled midway (Ctrl-C) is not
    journaled: a re-run sends it again, and a 404 then reports it `missing`.
    """
    causes = Causes() if causes is None else causes
    seen: set[str] = set()

    def fresh(key: str) -> bool:
        if key in journal.done or key in seen:
            report(key, "skipped", None)
            return False
        seen.add(key)
        return True

    async def pending() -> AsyncIterator[str]:
        if isinstance(keys, AsyncIterable):
            async for key in keys:
                if fresh(key):
                    yield key
        else:
            for key in keys:
                if fresh(key):
                    yield key

    async with contextlib.aclosing(
        client.groups.iter_delete_many(pending(), concurrency=concurrency)
    ) as outcomes:
        async for outcome in outcomes:
            error = outcome.error
            kind: KeyOutcome = (
                "deleted" if error is None else "missing" if outcome.missing else "failed"
            )
            detail = causes.add(outcome.prokey, error) if kind == "failed" and error else None
            journal.record(outcome.prokey, kind, detail)
            report(outcome.prokey, kind, error if kind == "failed" else None)


def _summary(name: str, counts: dict[str, int], started: float) -> str:
    """`bulk-get: 950 ok, 30 not found in 2.1 s`: the first count always, others if any."""
    first, *rest = counts.items()
    parts = [f"{first[1]:,} {first[0]}"] + [f"{n:,} {label}" for label, n in rest if n]
    return f"{name}: {', '.join(parts)} in {time.monotonic() - started:.1f} s"


def _get_report(
    out: JsonLines,
    failed: JsonLines | None,
    missing: JsonLines | None,
    bar: Bar,
    causes: Causes,
) -> Callable[[Outcome[Group]], None]:
    """What bulk-get does with each outcome: the group to `out`, a missing key to
    `missing`, a failed one to `failed` and counted under its cause; never a line each."""

    def report(outcome: Outcome[Group]) -> None:
        key = outcome.prokey
        error: BaseException | None = outcome.error
        if error is None:
            try:
                out.write(outcome.value)
            except UnprintableError as err:
                error = CommandError(f"the group cannot be printed: {err}")
            else:
                bar.advance("ok")
                return
        if isinstance(error, NotFoundError):
            if missing is not None:
                missing.write({"prokey": key})
            bar.advance("missing")
            return
        text = causes.add(key, error)
        if failed is not None:
            failed.write({"prokey": key, "error": text})
        bar.advance("failed")

    return report


@contextlib.contextmanager
def _key_file(path: str | None) -> Iterator[JsonLines | None]:
    """The JSON Lines file `--failed` or `--missing` names (None: none), flushed per line."""
    if path is None:
        yield None
        return
    with open_output(path, flush_each=True) as lines:
        yield lines


def _where(args: argparse.Namespace, counts: dict[KeyOutcome, int]) -> str:
    """Where the keys that are only counted on stderr are listed (or how to list them)."""
    parts = []
    if counts["missing"]:
        parts.append(
            f"keys not found are in {args.missing}"
            if args.missing
            else "pass --missing FILE to list the keys not found"
        )
    if counts["failed"]:
        parts.append(
            f"failed keys are in {args.failed}"
            if args.failed
            else "pass --failed FILE to list the failed keys"
        )
    return "".join(f"; {part}" for part in parts)


def _say_causes(causes: Causes) -> None:
    for line in causes.lines():
        say(line)


def cmd_bulk_get(args: argparse.Namespace, settings: Settings) -> int:
    """`bulk-get --input FILE|-`: groups as JSON Lines as they arrive; failed and missing
    keys counted on stderr, listed in `--failed` / `--missing`."""
    refuse_same_files(
        args.input, {"--output": args.output, "--failed": args.failed, "--missing": args.missing}
    )
    client = make_client(settings)
    total = count_keys(args.input) if is_terminal(sys.stderr) else None
    started = time.monotonic()
    causes = Causes()
    try:
        with progress_bar("bulk-get", total) as bar:

            async def run() -> None:
                async with client, open_keys(args.input) as keys:
                    with (
                        open_output(args.output) as out,
                        _key_file(args.failed) as failed,
                        _key_file(args.missing) as missing,
                    ):
                        report = _get_report(out, failed, missing, bar, causes)
                        await read_many(
                            client, keys, concurrency=settings.concurrency, report=report
                        )

            run_loop(run())
    finally:  # Ctrl-C too: say what failed so far
        _say_causes(causes)
    counts = bar.counts
    said = {"ok": counts["ok"], "not found": counts["missing"], "failed": counts["failed"]}
    say(_summary("bulk-get", said, started) + _where(args, counts))
    return OK if not counts["missing"] and not counts["failed"] else FAILED


def _dry_run(args: argparse.Namespace) -> int:
    done = read_journal(args.journal).done
    counts = {"would_delete": 0, "skipped": 0, "invalid": 0}

    async def run() -> None:
        seen: set[str] = set()
        async with open_keys(args.input) as keys:
            with open_output(None) as out:
                async for key in keys:
                    if key in done or key in seen:
                        counts["skipped"] += 1
                        continue
                    seen.add(key)
                    try:
                        validate_prokey(key)
                    except ValidationError as err:
                        say(f"invalid: {err}")
                        counts["invalid"] += 1
                        continue
                    out.write({"prokey": key, "would_delete": True})
                    counts["would_delete"] += 1
                out.write(counts)

    run_loop(run())
    return FAILED if counts["invalid"] else OK


def _confirm(source: str, total: int | None, done: int) -> None:
    """Ask before deleting (there is no terminal to ask on when the keys come from stdin)."""
    if source == "-":
        raise UsageError(
            "refusing to delete without --yes: the keys come from stdin, so there is "
            "no terminal to ask on"
        )
    listed = f"the {total:,} group(s)" if total is not None else "every group"
    resumed = f" ({done:,} already done per the journal)" if done else ""
    confirm_delete(f"{listed} listed in {source}{resumed}", yes=False)


def _say_journal(journal: Journal, path: str) -> None:
    """What opening the journal found: a torn last line dropped, a run resumed."""
    if journal.torn:
        say(f"journal: dropped a torn last line of {path} (left by an interrupted run)")
    if journal.resumed:
        say(f"journal: resuming, {len(journal.done):,} key(s) already done will be skipped")


def cmd_bulk_delete(args: argparse.Namespace, settings: Settings) -> int:
    """`bulk-delete --input FILE|- --journal FILE`: resumable, one summary line on stdout."""
    if args.dry_run:
        return _dry_run(args)
    client = make_client(settings)
    state = read_journal(args.journal)  # a damaged journal is reported before the question
    total = count_keys(args.input) if not args.yes or is_terminal(sys.stderr) else None
    if not args.yes:
        _confirm(args.input, total, len(state.done))
    started = time.monotonic()
    causes = Causes()
    counts: collections.Counter[KeyOutcome] = collections.Counter()
    try:
        _delete_all(args, settings, client, total, causes, counts)
    except KeyboardInterrupt:
        # Said once the bar is gone and the journal is synced to disk, so it is true.
        _end_delete(args, counts, started, causes)
        say(
            f"bulk-delete: interrupted; {args.journal} keeps every delete that finished: run "
            "the same command again to resume (keys already done are skipped, not sent again)"
        )
        raise
    return _end_delete(args, counts, started, causes)


def _delete_all(
    args: argparse.Namespace,
    settings: Settings,
    client: GroupsClient,
    total: int | None,
    causes: Causes,
    counts: collections.Counter[KeyOutcome],
) -> None:
    """Delete the keys of `--input` through the journal, counting each outcome."""
    with Journal.open(args.journal) as journal:
        _say_journal(journal, args.journal)
        with progress_bar("bulk-delete", total) as bar:

            def report(key: str, kind: KeyOutcome, error: AsyncGroupsError | None) -> None:
                counts[kind] += 1
                bar.advance(kind)

            async def run() -> None:
                async with client, open_keys(args.input) as keys:
                    await delete_journaled(
                        client,
                        keys,
                        journal,
                        concurrency=settings.concurrency,
                        report=report,
                        causes=causes,
                    )

            run_loop(run())


def _end_delete(
    args: argparse.Namespace,
    counts: collections.Counter[KeyOutcome],
    started: float,
    causes: Causes,
) -> int:
    """The causes and summary on stderr, the one summary line on stdout (after Ctrl-C
    or SIGTERM too, counting what the journal holds of this run); the exit code."""
    summary = {
        "deleted": counts["deleted"],
        "missing": counts["missing"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
    }
    _say_causes(causes)
    retry = (
        f"; {args.journal} lists the failed keys: run the same command again to retry them"
        if counts["failed"]
        else ""
    )
    say(_summary("bulk-delete", dict(summary), started) + retry)
    with open_output(None) as out:
        out.write(summary)
    return FAILED if counts["failed"] else OK

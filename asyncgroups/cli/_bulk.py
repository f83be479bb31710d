"""bulk-get and bulk-delete: many keys from a file or stdin, streamed, every key accounted for.

The runners (`read_many`, `delete_journaled`) are separate from the commands; the demo
drives `delete_journaled`, the very code of `bulk-delete`, to prove its journal. A
refused API key stops a run at once (every further request would be refused too)
instead of listing the same failure for each key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable

from .. import (
    Group,
    GroupsClient,
    NotFoundError,
    Outcome,
    ValidationError,
    validate_prokey,
)
from ._common import KeyOutcome, cannot_print, confirm_delete, describe, fatal, shown_key
from ._exits import FAILED, OK, CommandError, UsageError
from ._io import (
    UnprintableError,
    count_keys,
    is_terminal,
    open_keys,
    open_output,
    refuse_same_file,
    say,
)
from ._journal import Journal, read_journal
from ._progress import progress_bar
from ._settings import Settings, make_client

__all__ = ["cmd_bulk_delete", "cmd_bulk_get", "delete_journaled", "read_many"]

#: Called once per key a delete run finishes: the key, how it ended, the error if any.
DeleteReport = Callable[[str, KeyOutcome, str | None], None]


async def read_many(
    client: GroupsClient,
    keys: Iterable[str] | AsyncIterable[str],
    *,
    concurrency: int,
    report: Callable[[Outcome[Group]], None],
) -> None:
    """Read every key, calling `report` with each outcome as it completes.

    A refused API key raises `CommandError` and cancels the reads in flight.
    """
    async with contextlib.aclosing(
        client.groups.iter_many(keys, concurrency=concurrency)
    ) as outcomes:
        async for outcome in outcomes:
            if outcome.error is not None and fatal(outcome.error):
                raise CommandError(describe(outcome.error))
            report(outcome)


async def delete_journaled(
    client: GroupsClient,
    keys: Iterable[str] | AsyncIterable[str],
    journal: Journal,
    *,
    concurrency: int,
    report: DeleteReport,
) -> None:
    """Delete every key not done yet, journaling each outcome the moment it is known.

    A key the journal has as done (or seen earlier in this run) is reported `skipped`
    and not sent. At most `concurrency` deletes are in flight and only as many keys are
    pulled from `keys`. A delete cancelled midway (Ctrl-C, or a refused API key, which
    raises `CommandError`) is not journaled: a re-run sends it again, and a 404 then
    reports it `missing`.
    """
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
            if error is not None and fatal(error):
                raise CommandError(describe(error))
            kind: KeyOutcome = (
                "deleted" if error is None else "missing" if outcome.missing else "failed"
            )
            detail = describe(error) if kind == "failed" and error is not None else None
            journal.record(outcome.prokey, kind, detail)
            report(outcome.prokey, kind, detail)


def _summary(name: str, counts: dict[str, int], started: float) -> str:
    """`bulk-get: 950 ok, 30 not found in 2.1 s`: the first count always, others if any."""
    first, *rest = counts.items()
    parts = [f"{first[1]:,} {first[0]}"] + [f"{n:,} {label}" for label, n in rest if n]
    return f"{name}: {', '.join(parts)} in {time.monotonic() - started:.1f} s"


def cmd_bulk_get(args: argparse.Namespace, settings: Settings) -> int:
    """`bulk-get --input FILE|-`: groups as JSON Lines as they arrive; failures on stderr."""
    refuse_same_file(args.input, args.output)
    client = make_client(settings)
    total = count_keys(args.input) if is_terminal(sys.stderr) else None
    started = time.monotonic()
    with progress_bar("bulk-get", total) as bar:

        async def run() -> None:
            async with client, open_keys(args.input) as keys:
                with open_output(args.output) as out:

                    def report(outcome: Outcome[Group]) -> None:
                        error = outcome.error
                        if error is None and outcome.value is not None:
                            try:
                                out.write(outcome.value)
                            except UnprintableError as err:
                                bar.log(cannot_print(outcome.prokey, err))
                                bar.advance("failed")
                            else:
                                bar.advance("ok")
                        elif isinstance(error, NotFoundError):
                            bar.log(f"not found: {outcome.prokey}")
                            bar.advance("missing")
                        else:
                            key = shown_key(outcome.prokey)
                            bar.log(f"failed: {key}: {describe(error or Exception())}")
                            bar.advance("failed")

                    await read_many(client, keys, concurrency=settings.concurrency, report=report)

        asyncio.run(run())
    counts = bar.counts
    say(
        _summary(
            "bulk-get",
            {"ok": counts["ok"], "not found": counts["missing"], "failed": counts["failed"]},
            started,
        )
    )
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

    asyncio.run(run())
    return FAILED if counts["invalid"] else OK


def cmd_bulk_delete(args: argparse.Namespace, settings: Settings) -> int:
    """`bulk-delete --input FILE|- --journal FILE`: resumable, one summary line on stdout."""
    if args.dry_run:
        return _dry_run(args)
    client = make_client(settings)
    state = read_journal(args.journal)  # a damaged journal is reported before the question
    total = count_keys(args.input) if not args.yes or is_terminal(sys.stderr) else None
    if not args.yes:
        if args.input == "-":
            raise UsageError(
                "refusing to delete without --yes: the keys come from stdin, so there is "
                "no terminal to ask on"
            )
        listed = f"the {total:,} group(s)" if total is not None else "every group"
        resumed = f" ({len(state.done):,} already done per the journal)" if state.done else ""
        confirm_delete(f"{listed} listed in {args.input}{resumed}", yes=False)
    started = time.monotonic()
    try:
        with Journal.open(args.journal) as journal:
            if journal.torn:
                say(
                    f"journal: dropped a torn last line of {args.journal} (left by an "
                    "interrupted run)"
                )
            if journal.resumed:
                say(f"journal: resuming, {len(journal.done):,} key(s) already done will be skipped")
            with progress_bar("bulk-delete", total) as bar:

                def report(key: str, kind: KeyOutcome, error: str | None) -> None:
                    if kind == "failed":
                        bar.log(f"failed: {shown_key(key)}: {error}")
                    bar.advance(kind)

                async def run() -> None:
                    async with client, open_keys(args.input) as keys:
                        await delete_journaled(
                            client, keys, journal, concurrency=settings.concurrency, report=report
                        )

                asyncio.run(run())
    except KeyboardInterrupt:
        # Said once the bar is gone and the journal is synced to disk, so it is true.
        say(
            f"bulk-delete: interrupted; {args.journal} keeps every delete that finished: run "
            "the same command again to resume (keys already done are skipped, not sent again)"
        )
        raise
    counts = bar.counts
    summary = {
        "deleted": counts["ok"],
        "missing": counts["missing"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
    }
    say(_summary("bulk-delete", dict(summary), started))
    with open_output(None) as out:
        out.write(summary)
    return FAILED if counts["failed"] else OK

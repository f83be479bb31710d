"""The failures of a bulk run, counted by cause: a few lines on stderr whatever the count.

When the API cannot serve (a closed port, a refused certificate, a refused key, a
shared limit out of reach) every key fails the same way, and a bulk call that stopped
sending fails each key it never tried with the very error another key met, that key's
URL and all. One line per key buried the cause under thousands of lines, most naming
the wrong key. So the text of a failure is taken apart from the request it was about
(`cause_of`), keys are counted under their cause, and only the commonest causes are
shown, one line each with its count; each key's own outcome goes to a file instead (the
journal of bulk-delete, `--failed` of bulk-get) as `Causes.add` words it. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from ._common import describe, shown_key

__all__ = ["SHOWN_CAUSES", "Causes", "cause_of", "not_tried"]

#: Causes shown one line each; the rest are summed up in one more line.
SHOWN_CAUSES: Final = 8
#: Causes told apart at most: a run of 200,000 keys with as many distinct failures (a
#: file of junk lines) must not hold them all. When full, causes of a single key are
#: forgotten (only counted); when few are, a new cause is only counted.
_TRACKED: Final = 1000

#: The request a failure's text starts with (`GET /group/<prokey>: `).
_REQUEST: Final = re.compile(r"^[A-Z]+ /\S*: ")
#: What differs between two failures of one cause: the attempt, the server's request id.
_PER_REQUEST: Final = re.compile(r" \((?:attempt \d+|request id [^)]*)\)")


def cause_of(error: BaseException) -> str:
    """What went wrong, without the request it went wrong for: the key, the attempt and
    the request id taken out, so that the failures of many keys read the same."""
    return _PER_REQUEST.sub("", _REQUEST.sub("", describe(error), count=1))


def not_tried(key: str, error: BaseException) -> bool:
    """True when `error` is about another key's request: the bulk call had stopped
    sending (the API was out of reach or refused the key) and failed `key` with the
    error that stopped it, without a request of its own. (An error of no request, a
    shared limit out of reach, says nothing here: `Causes` tells those apart.)"""
    url = getattr(error, "url", "")
    return bool(url) and isinstance(url, str) and not url.endswith(f"/group/{key}")


class _Cause:
    __slots__ = ("first_key", "first_text", "keys", "untried")

    def __init__(self, key: str, text: str) -> None:
        self.first_key = key
        self.first_text = text
        self.keys = 0
        self.untried = 0


class Causes:
    """Failed keys counted by cause; `lines()` says each of the commonest causes once."""

    __slots__ = ("_causes", "_others", "_stops", "failed")

    def __init__(self) -> None:
        self._causes: dict[str, _Cause] = {}
        #: Keys counted without their cause: lone causes forgotten to make room, and
        #: any met when there was none.
        self._others = 0
        #: The errors that stopped a bulk call (by id, kept alive so no id is reused).
        self._stops: dict[int, BaseException] = {}
        #: Failed keys in all.
        self.failed = 0

    def add(self, key: str, error: BaseException) -> str:
        """Count `key`'s failure under its cause; return the text of its own record:
        the error, or `not tried: <cause>` for a key that was never sent."""
        self.failed += 1
        untried = not_tried(key, error) or self._stopped_before(error)
        said = cause_of(error)
        text = f"not tried: {said}" if untried else describe(error)
        cause = self._causes.get(said)
        if cause is None:
            if len(self._causes) >= _TRACKED and not self._make_room():
                self._others += 1
                return text
            cause = self._causes[said] = _Cause(key, text)
        cause.keys += 1
        cause.untried += untried
        return text

    def _stopped_before(self, error: BaseException) -> bool:
        """True when this very error object already failed another key.

        A bulk call that stops sending fails every key it had not tried with the error
        that stopped it, one object carrying a note that says so; the first key to
        report it is taken for the one that met it. This tells untried keys apart when
        the error names no request (a shared limit out of reach). Only errors with
        notes are remembered: one or two a run, however many keys fail.
        """
        if not getattr(error, "__notes__", None):
            return False
        if id(error) in self._stops:
            return True
        self._stops[id(error)] = error
        return False

    def _make_room(self) -> bool:
        """Forget the causes of one key (counted on as others), if that frees a tenth of
        the room; False when it would not (the scan is then not worth repeating)."""
        lone = [said for said, cause in self._causes.items() if cause.keys == 1]
        if len(lone) < _TRACKED // 10:
            return False
        for said in lone:
            del self._causes[said]
        self._others += len(lone)
        return bool(lone)

    def lines(self) -> list[str]:
        """At most `SHOWN_CAUSES` + 1 lines: the commonest causes first, each with its count.

        A cause of one key names the key and its whole error, as a lone failure reads.
        """
        ranked = sorted(self._causes.items(), key=lambda item: -item[1].keys)  # stable
        lines = [_line(text, cause) for text, cause in ranked[:SHOWN_CAUSES]]
        more = sum(cause.keys for _, cause in ranked[SHOWN_CAUSES:]) + self._others
        if more:
            lines.append(f"failed: {more:,} more key(s), for other causes")
        return lines


def _line(text: str, cause: _Cause) -> str:
    if cause.keys == 1:
        return f"failed: {shown_key(cause.first_key)}: {cause.first_text}"
    untried = (
        f" ({cause.untried:,} of them not tried: the run stopped sending)" if cause.untried else ""
    )
    return f"failed: {cause.keys:,} keys: {text}{untried}"

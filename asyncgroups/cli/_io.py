"""The command's streams: JSON Lines out, messages and prompts to stderr, keys in lazily.

stdout carries JSON Lines only, so `asyncgroups ... | jq` always works; everything meant
for a human goes to stderr, with control characters escaped (`printable`), so text from
a server or from the input can never drive the terminal. Keys are read in 64 KiB chunks,
so a file of a million keys is never held in memory, and a pipe is read without blocking
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import IO, Any, Final, TextIO

import attrs

from ..contrib.jsonable import to_jsonable
from ._exits import CommandError, UsageError

__all__ = [
    "JsonLines",
    "KeyReader",
    "UnprintableError",
    "ask",
    "count_keys",
    "encode",
    "is_terminal",
    "key_of_line",
    "open_keys",
    "open_output",
    "printable",
    "say",
]

_CHUNK: Final = 64 * 1024
#: A longer line is not a list of keys (a binary file, say): stop rather than buffer it.
_MAX_LINE: Final = 1024 * 1024


def is_terminal(stream: object) -> bool:
    """True when `stream` is an interactive terminal (False for pipes, files, captures)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (OSError, ValueError):  # closed or detached
        return False


#: What a terminal may act on rather than show: C0 and C1 controls (ESC starts every
#: escape sequence, BEL ends a title change, CR and LF break "one line"), line and
#: paragraph separators, the bidirectional overrides that make text read other than it
#: is, and lone surrogates (undecodable input bytes), which no terminal can show.
_UNPRINTABLE: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    r"\ud800-\udfff]"
)


_SHORT_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every character a terminal would act on escaped: `\\n`, `\\x1b`, `\\u202e`.

    Foreign text (a server's message, a line of input) goes through this before it
    reaches stderr, so `\\x1b]0;...\\x07` shows as those characters instead of retitling
    the window. Everything else, non-ASCII letters included, is left as it is.
    """
    return _UNPRINTABLE.sub(_escape, text)


def say(message: str) -> None:
    """Write one line for a human to stderr, control characters escaped."""
    sys.stderr.write(printable(message) + "\n")
    sys.stderr.flush()


def ask(question: str) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin; default no.

    Ctrl-C at the question ends the prompt's line first, so the message that follows
    does not run on after `^C`.
    """
    sys.stderr.write(f"{printable(question)} [y/N] ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        sys.stderr.flush()
        raise
    if not answer.endswith("\n"):
        sys.stderr.write("\n")  # end of input: keep the next message on its own line
    return answer.strip().lower() in ("y", "yes")


class UnprintableError(CommandError):
    """A value could not be written as JSON: it nests deeper than `MAX_DEPTH`.

    Raised before anything of the value is written, so the output stays whole lines;
    a command that prints many values reports it for the one and goes on.
    """


#: Levels of nesting past which a command prints a value as failed, on every Python.
#: Left to the interpreter's recursion limit the line moved: 3.11 spends two frames a
#: level where 3.12 inlines comprehensions and spends one.
MAX_DEPTH: Final = 400


def _nests_deeper(value: Any, limit: int) -> bool:
    """True when dicts, lists and tuples nest more than `limit` deep in `value`; iterative."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list | tuple):
            if depth == limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def _finite(value: Any) -> Any:
    """A copy of `value` whose NaN and ±Infinity numbers are None, at any depth.

    Iterative, so a value nested as deep as a reply may be does not exhaust the stack.
    """
    top: list[Any] = [value]
    pending: list[Any] = [top]
    while pending:
        container = pending.pop()
        entries = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in list(entries):
            if isinstance(item, float) and not math.isfinite(item):
                container[key] = None
            elif isinstance(item, dict | list | tuple):
                copied = dict(item) if isinstance(item, dict) else list(item)
                container[key] = copied
                pending.append(copied)
    return top[0]


#: One encoder for every line (`json.dumps` with an option builds one per call).
_STRICT: Final = json.JSONEncoder(allow_nan=False)


def encode(obj: Any) -> str:
    """`obj` as one line of strict JSON (RFC 8259), non-ASCII escaped.

    A NaN or ±Infinity (which a lenient server may send) is written as `null`, as
    JavaScript's `JSON.stringify` does, since strict JSON has no spelling for them; a
    value nested too deep to encode is an `UnprintableError`.
    """
    try:
        try:
            return _STRICT.encode(obj)
        except ValueError:  # a non-finite number somewhere: the rare, slower path
            return _STRICT.encode(_finite(obj))
    except RecursionError:
        raise UnprintableError("it nests too deeply to be written as JSON") from None


class JsonLines:
    """Writes one JSON object per line; flushes each line when a human is watching.

    `flush_each=True` flushes every line wherever it goes, for output that stands for
    work already done (a reader, or a killed run, then never misses a finished item).
    """

    __slots__ = ("_flush_each", "_stream")

    def __init__(self, stream: TextIO, *, flush_each: bool = False) -> None:
        self._stream = stream
        self._flush_each = flush_each or is_terminal(stream)

    def write(self, obj: Any) -> None:
        """Write `obj` (a dict, or a model shown by `to_jsonable`) as one line of JSON.

        Nothing is written when it cannot be encoded (`UnprintableError`).
        """
        try:
            value = to_jsonable(obj) if attrs.has(type(obj)) else obj
            too_deep = _nests_deeper(value, MAX_DEPTH)
        except RecursionError:
            too_deep = True
        if too_deep:
            raise UnprintableError("it nests too deeply to be written as JSON")
        self._stream.write(encode(value) + "\n")
        if self._flush_each:
            self._stream.flush()

    def flush(self) -> None:
        """Push buffered lines out (before a summary, or before the process ends)."""
        self._stream.flush()


@contextlib.contextmanager
def open_output(path: str | None, *, flush_each: bool = False) -> Iterator[JsonLines]:
    """JSON Lines to `path` (created or truncated), or to stdout when None or `-`."""
    if path is None or path == "-":
        out = JsonLines(sys.stdout, flush_each=flush_each)
        yield out
        out.flush()
        return
    try:
        stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
    with stream:
        yield JsonLines(stream, flush_each=flush_each)


def _same_file(first: str, second: str) -> bool:
    """True when two paths name one file: the same path, or links to one existing file."""
    if os.path.abspath(first) == os.path.abspath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def _is_device(path: str) -> bool:
    """True for a path that is not a regular file to write over (`/dev/stderr`, a pipe)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def refuse_same_files(input_path: str, outputs: dict[str, str | None]) -> None:
    """A `UsageError` when an output would overwrite the input before it is read, or two
    outputs (`{"--output": path, ...}`, None: not given) would write over each other.

    `-` (stdout) is only for `--output`: the other files would mix into its JSON. Two
    options may share a device such as `/dev/stderr`, which nothing truncates.
    """
    given = {option: path for option, path in outputs.items() if path is not None}
    for option, path in given.items():
        if path == "-" and option != "--output":
            raise UsageError(
                f"{option} - would mix its lines into the groups on stdout: give a file "
                "(or /dev/stderr)"
            )
        if input_path != "-" and path != "-" and _same_file(input_path, path):
            raise UsageError(
                f"{option} {path} is the --input file: writing it would destroy the keys"
            )
    files = [(option, path) for option, path in given.items() if path != "-"]
    for n, (option, path) in enumerate(files):
        for other, other_path in files[n + 1 :]:
            if _same_file(path, other_path) and not _is_device(path):
                raise UsageError(f"{option} and {other} both name {path}: give each its own file")


def key_of_line(line: str) -> str | None:
    """The key on one input line; None for a blank line or a `#` comment.

    A line may be a bare key, or JSON: an object with a `prokey` (or else `id`) string,
    as `list`, `get`, `bulk-get` and the journal print them, so their output pipes
    straight back in; or a JSON string (`jq .prokey` without `-r`). A JSON line with
    no key is returned whole, and fails as a key that is not a prokey.
    """
    text = line.strip()
    if text.startswith(("{", '"')):
        return _key_of_json(text)
    key = text.split("#", 1)[0].strip()
    return key or None


def _key_of_json(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, str):
        return value.strip() or text
    if isinstance(value, dict):
        for field in ("prokey", "id"):
            key = value.get(field)
            if isinstance(key, str) and key.strip():
                return key.strip()
    return text


Chunks = Callable[[], Awaitable[bytes]]


class KeyReader:
    """Keys from a byte source, one per line, as an async iterator.

    Blank lines and `#` comments (whole-line or trailing) are skipped. Only one chunk
    of input is held at a time.
    """

    __slots__ = ("_carry", "_eof", "_lines", "_read")

    def __init__(self, read: Chunks) -> None:
        self._read = read
        self._lines: list[bytes] = []
        self._carry = b""
        self._eof = False

    def __aiter__(self) -> KeyReader:
        return self

    async def __anext__(self) -> str:
        while True:
            while self._lines:
                key = key_of_line(self._lines.pop().decode("utf-8", "replace"))
                if key is not None:
                    return key
            if self._eof:
                raise StopAsyncIteration
            await self._fill()

    async def _fill(self) -> None:
        chunk = await self._read()
        if not chunk:
            self._eof = True
            lines = [self._carry] if self._carry else []
            self._carry = b""
        else:
            *lines, self._carry = (self._carry + chunk).split(b"\n")
            if len(self._carry) > _MAX_LINE:
                raise CommandError("the input has a line longer than 1 MiB: it is not a key list")
        lines.reverse()  # popped from the end
        self._lines = lines


def _file_chunks(stream: IO[Any]) -> Chunks:
    async def read() -> bytes:
        data = stream.read(_CHUNK)
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    return read


def _fd_of(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.asynccontextmanager
async def _pipe_chunks(fd: int) -> AsyncIterator[Chunks]:
    """Read a pipe through the event loop, so waiting for a slow writer blocks nothing.

    A duplicate of the descriptor is handed to asyncio (closing it leaves stdin open),
    and blocking mode is restored afterwards, since the two share that flag.
    """
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_MAX_LINE, loop=loop)
    pipe = os.fdopen(os.dup(fd), "rb", buffering=0)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe
        )
    except BaseException:
        pipe.close()
        raise

    async def read() -> bytes:
        return await reader.read(_CHUNK)

    try:
        yield read
    finally:
        transport.close()
        await asyncio.sleep(0)  # the transport closes the pipe on the next loop pass
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)


@contextlib.asynccontextmanager
async def open_keys(path: str) -> AsyncIterator[KeyReader]:
    """Keys from the file at `path`, or from stdin when `path` is `-`.

    A missing or unreadable file, or stdin left on a terminal, is a `UsageError`.
    """
    if path != "-":
        try:
            # A local file opens at once (and is read in small chunks): no thread needed.
            stream: IO[Any] = open(path, "rb")  # noqa: SIM115, ASYNC230
        except OSError as err:
            raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
        with stream:
            yield KeyReader(_file_chunks(stream))
        return
    stdin = sys.stdin
    fd = _fd_of(stdin)
    if fd is None:  # a stand-in stream (tests, embedding): plain reads
        yield KeyReader(_file_chunks(stdin))
        return
    if is_terminal(stdin):
        raise UsageError(
            "--input - reads keys from stdin, but stdin is a terminal: "
            "pipe the keys in (cat keys.txt | asyncgroups ...) or pass --input FILE"
        )
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        # `< keys.txt`, or `< /dev/null` as cron and `ssh -n` give: a file or a device
        # never blocks for long, and the event loop cannot watch one.
        yield KeyReader(_file_chunks(getattr(stdin, "buffer", stdin)))
        return
    async with _pipe_chunks(fd) as read:
        yield KeyReader(read)


def count_keys(path: str) -> int | None:
    """How many keys a regular file holds (one streaming pass); None for stdin or a pipe."""
    if path == "-":
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        count = 0
        with open(path, "rb") as stream:
            for raw in stream:
                if key_of_line(raw.decode("utf-8", "replace")) is not None:
                    count += 1
        return count
    except OSError:
        return None  # reported properly when the keys are opened

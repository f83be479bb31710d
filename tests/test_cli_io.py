"""Reading keys lazily and writing JSON Lines: the command's streams."""

from __future__ import annotations

import io
import json

import pytest

from asyncgroups.cli._exits import CommandError
from asyncgroups.cli._io import MAX_DEPTH, JsonLines, KeyReader, UnprintableError, key_of_line
from asyncgroups.models import GroupSummary


class Chunks:
    """A byte source handing out fixed chunks, counting how many were asked for."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.reads = 0

    async def read(self) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("abc\n", "abc"),
        ("  abc  \r\n", "abc"),
        ("abc # note", "abc"),
        ("# all comment", None),
        ("   \n", None),
        ("", None),
    ],
)
def test_key_of_line_skips_blanks_and_comments(line: str, key: str | None) -> None:
    assert key_of_line(line) == key


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"prokey": "abc", "name": "Team #1"}\n', "abc"),
        ('  {"id": "abc"}  ', "abc"),
        ('{"prokey": " abc ", "id": "other"}', "abc"),
        ('"abc"', "abc"),
        # no key in it: the line itself, which then fails as "not a prokey"
        ('{"name": "no key"}', '{"name": "no key"}'),
        ('{"prokey": 5}', '{"prokey": 5}'),
        ("{not json", "{not json"),
    ],
)
def test_key_of_line_takes_the_prokey_of_a_json_line(line: str, key: str) -> None:
    assert key_of_line(line) == key


async def test_key_reader_joins_lines_split_across_chunks_and_keeps_a_last_unterminated_one() -> (
    None
):
    source = Chunks(b"one\ntw", b"o\r\n# c\n\nthr", b"ee")

    keys = [key async for key in KeyReader(source.read)]

    assert keys == ["one", "two", "three"]


async def test_key_reader_pulls_input_only_as_keys_are_taken() -> None:
    source = Chunks(b"a\nb\n", b"c\n", b"d\n")
    reader = KeyReader(source.read)

    assert await anext(reader) == "a"
    assert await anext(reader) == "b"
    assert source.reads == 1
    assert await anext(reader) == "c"
    assert source.reads == 2


async def test_key_reader_refuses_a_huge_line() -> None:
    reader = KeyReader(Chunks(b"x" * (1024 * 1024 + 1)).read)

    with pytest.raises(CommandError, match="longer than 1 MiB"):
        await anext(reader)


def test_json_lines_writes_one_object_per_line_ascii_safe() -> None:
    stream = io.StringIO()
    out = JsonLines(stream)

    out.write({"name": "München"})
    out.write({"n": 1})

    lines = stream.getvalue().splitlines()
    assert lines == ['{"name": "M\\u00fcnchen"}', '{"n": 1}']
    assert json.loads(lines[0]) == {"name": "München"}


def _nested(depth: int, leaf: object) -> object:
    """`leaf` inside `depth` levels of dicts and lists, alternating."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize(
    ("depth", "prints"),
    [(MAX_DEPTH - 1, True), (MAX_DEPTH, True), (MAX_DEPTH + 1, False), (MAX_DEPTH * 3, False)],
)
def test_json_lines_refuses_a_value_nested_past_max_depth_on_every_python(
    depth: int, prints: bool
) -> None:
    # A summary's fields are one level, the `extra` mapping another.
    summary = GroupSummary(prokey="k", name="n", extra={"tree": _nested(depth - 2, 1)})
    stream = io.StringIO()

    if prints:
        JsonLines(stream).write(summary)
        assert json.loads(stream.getvalue())["prokey"] == "k"
    else:
        with pytest.raises(UnprintableError, match="nests too deeply"):
            JsonLines(stream).write(summary)
        assert stream.getvalue() == ""

"""`_convert.loads`: sped up by orjson when installed, but always with `json`'s results."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asyncgroups._convert import _json_loads, loads

HAS_ORJSON = importlib.util.find_spec("orjson") is not None

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


#: The loader in use here: orjson's when installed, else `json.loads` itself.
LOADERS = pytest.mark.parametrize("read", [loads], ids=["installed"])


@LOADERS
@given(value=_values, ascii_only=st.booleans())
def test_loads_reads_any_json_as_json_does(
    read: Callable[[bytes | str], Any], value: Any, ascii_only: bool
) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert _same(read(body), json.loads(body))


@pytest.mark.parametrize(
    "body",
    [
        b"18446744073709551616",  # past 64 bits: orjson would give a float
        b"-9223372036854775809",
        b'{"n": 123456789012345678901234567890}',
        b"1e400",
        b"[NaN, Infinity, -Infinity]",
        b'"\\ud800"',  # a lone surrogate
        b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte order mark
        '{"a": "é"}'.encode("utf-16"),
        '{"a": 1}',  # text, not bytes
        b'{"a": 1, "a": 2}',
        b"-0",
        b'  [1, 2.5, "x", null, true]\n',
        '[{"a": "é"}]'.encode("utf-16-le"),  # starts with "[" but is not UTF-8
        '{"a": "é"}'.encode("utf-32-le"),
        b'[{"a": "\xed\xa0\x80"}]',  # an encoded surrogate, read with surrogatepass
    ],
)
@LOADERS
def test_loads_matches_json_on_edge_cases(
    read: Callable[[bytes | str], Any], body: bytes | str
) -> None:
    assert _same(read(body), json.loads(body))


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1,]", b"nul", b"\xff\xfe\xfd", b'{"a": 1} x', b'{"a": "\xff"}']
)
@LOADERS
def test_loads_raises_what_json_raises(read: Callable[[bytes | str], Any], body: bytes) -> None:
    try:
        json.loads(body)
    except ValueError as err:
        expected = err
    with pytest.raises(type(expected), match=re.escape(str(expected))) as caught:
        read(body)
    assert type(caught.value) is type(expected)


@pytest.mark.skipif(not HAS_ORJSON, reason="orjson is not installed (asyncgroups[speedups])")
def test_loads_uses_orjson_when_installed() -> None:
    assert _json_loads() is not json.loads


def test_loads_is_the_plain_json_path_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_orjson(name: str, package: str | None = None) -> Any:
        if name == "orjson":
            raise ImportError(name)
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_orjson)
    assert _json_loads() is json.loads

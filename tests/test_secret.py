"""`Secret`: a string whose repr (and every slice's) is masked, and that is sent as is."""

from __future__ import annotations

import pickle
import traceback

import pytest
from conftest import API_KEY
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from asyncgroups._secret import MASK, Secret


def test_secret_repr_is_masked_and_its_value_is_the_key() -> None:
    secret = Secret(API_KEY)
    assert repr(secret) == "'***'"
    assert secret == API_KEY
    assert hash(secret) == hash(API_KEY)
    assert str(secret) == API_KEY
    assert type(str(secret)) is str  # what a header writer copies out of it
    assert f"{secret}" == API_KEY
    assert API_KEY not in repr({"Authorization": secret})
    assert API_KEY not in repr([secret, (secret,)])


def test_secret_slices_are_masked_too() -> None:
    """rich and structlog cut a long string and show the cut's repr."""
    secret = Secret(API_KEY)
    assert repr(secret[:10]) == repr(MASK)
    assert repr(secret[3]) == repr(MASK)
    assert secret[:10] == API_KEY[:10]
    assert f"{secret[:10]!r}+{len(secret) - 10}" == "'***'+14"


def test_secret_in_multidict_headers_stays_the_same_object() -> None:
    """aiohttp copies header mappings into CIMultiDicts and proxies: the value survives."""
    secret = Secret(API_KEY)
    headers = CIMultiDict({"Authorization": secret, "Accept": "application/json"})
    copied = CIMultiDict(headers)
    copied.update({"User-Agent": "x"})
    for mapping in (headers, copied, CIMultiDictProxy(copied), copied.copy()):
        assert mapping["authorization"] is secret
        assert API_KEY not in repr(mapping)


def test_secret_in_a_local_is_masked_by_capture_locals() -> None:
    def fails() -> None:
        headers = {"Authorization": Secret(API_KEY)}
        raise RuntimeError(len(headers))

    with pytest.raises(RuntimeError) as info:
        fails()
    shown = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    text = "".join(shown.format())
    assert "headers = {'Authorization': '***'}" in text
    assert API_KEY not in text


def test_secret_survives_a_pickle_round_trip_still_masked() -> None:
    restored = pickle.loads(pickle.dumps(Secret(API_KEY)))  # noqa: S301 - our own bytes
    assert type(restored) is Secret
    assert restored == API_KEY
    assert repr(restored) == repr(MASK)


@given(st.text(min_size=6), st.integers(), st.integers())
def test_no_repr_of_a_secret_or_its_slices_shows_it(key: str, start: int, stop: int) -> None:
    secret = Secret(key)
    assert repr(secret) == repr(MASK)
    assert repr(secret[start:stop]) == repr(MASK)
    assert secret[start:stop] == key[start:stop]

"""Masking secrets: every spelling of a key, everywhere an error keeps text. Pure."""

from __future__ import annotations

import base64
import html
import json
import pickle
import re
import traceback
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
import yarl
from conftest import URL_PASSWORD
from hypothesis import given
from hypothesis import strategies as st

from asyncgroups._mask import MASK, SecretMasker, redact_url, url_secrets
from asyncgroups.errors import make_status_error

#: Shaped like a real key: base64 characters, a slash among them (JSON may escape it).
SECRET = "sk_live_MARKER/slash+plus=="
MASKER = SecretMasker([SECRET])


def _all_u(text: str, upper: bool = False) -> str:
    escaped = "".join(f"\\u{ord(c):04x}" for c in text)
    return escaped.upper().replace("\\U", "\\u") if upper else escaped


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        SECRET.replace("/", "\\/"),  # PHP's json_encode escapes slashes
        json.dumps(SECRET, ensure_ascii=True).replace("M", "\\u004d")[1:-1],
        _all_u(SECRET),
        _all_u(SECRET, upper=True),
        _all_u(SECRET[:5]) + SECRET[5:12] + _all_u(SECRET[12:]),
        quote(SECRET, safe=""),
        re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(SECRET, safe="")),
        quote_plus(SECRET),
        "".join(f"%{ord(c):02X}" for c in SECRET),
        html.escape(SECRET),
        "".join(f"&#{ord(c)};" for c in SECRET),
        "".join(f"&#x{ord(c):X};" for c in SECRET),
        SECRET.replace("_", "&lowbar;").replace("/", "&sol;").replace("+", "&plus;"),
        SECRET.replace("=", "&equals;").replace("_", "&UnderBar;"),  # HTML5 names
        SECRET[:2] + "%5f" + SECRET[3:9] + "\\u0041" + SECRET[10:],  # mixed by character
        SECRET.upper(),  # a server that upper-cases what it echoes
        SECRET.swapcase(),
        quote(SECRET.upper(), safe=""),
    ],
)
def test_secret_masker_masks_every_spelling_of_the_key(spelling: str) -> None:
    text = f'{{"message": "key {spelling} is not valid"}}'
    assert MASKER.leaks(text)
    assert MASKER.mask(text) == f'{{"message": "key {MASK} is not valid"}}'


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # aiohttp keeps the first 100 bytes of an over-long header line, key cut short.
        (f"b'{'A' * 80}{SECRET[:-4]}...'", f"b'{'A' * 80}{MASK}...'"),
        (f"bad key {SECRET[:-1]}", f"bad key {MASK}"),  # a key missing its last character
        (f"half {SECRET[:14]}!", f"half {MASK}!"),  # half of it (27 characters) is enough
        (f"less {SECRET[:13]}!", f"less {SECRET[:13]}!"),  # less than half is left alone
    ],
)
def test_secret_masker_masks_a_key_cut_short(text: str, masked: str) -> None:
    assert MASKER.mask(text) == masked


def test_secret_masker_masks_a_short_secret_only_whole() -> None:
    short = SecretMasker(["test-key"])
    assert short.mask("test-key and test-ke") == "*** and test-ke"


@pytest.mark.parametrize(
    "text",
    ["", "nothing to see", "sk_live_", "MARKER/slash+plus==", "sk_live_MARK", "&amp; sk_"],
)
def test_secret_masker_leaves_other_text_alone(text: str) -> None:
    assert not MASKER.leaks(text)
    assert MASKER.mask(text) == text


def test_secret_masker_masks_a_key_with_json_special_and_non_ascii_characters() -> None:
    secret = 'k"\\\t é😀'
    masker = SecretMasker([secret])
    for spelling in (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        html.escape(secret),
    ):
        assert masker.mask(f"<{spelling}>") == f"<{MASK}>", spelling


def test_secret_masker_masks_the_longer_of_two_overlapping_secrets_whole() -> None:
    masker = SecretMasker(["pass", "password1"])
    assert masker.mask("a password1 b pass") == f"a {MASK} b {MASK}"


def test_secret_masker_without_secrets_changes_nothing() -> None:
    masker = SecretMasker(["", ""])
    assert masker.mask("anything") == "anything"
    assert not masker.leaks("anything")


# No "*": masking could otherwise spell a key made of stars out of the mask itself.
_KEY_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="*")
#: Ways a server may spell one character of an echoed key.
_SPELLERS: list[Callable[[str], str]] = [
    lambda c: c,
    lambda c: json.dumps(c)[1:-1],
    lambda c: f"\\u{ord(c):04x}",
    lambda c: f"\\u{ord(c):04X}",
    lambda c: quote(c, safe=""),
    lambda c: quote_plus(c),
    lambda c: html.escape(c),
    lambda c: f"&#{ord(c)};",
]


@given(
    secret=st.text(_KEY_CHARS, min_size=8, max_size=40),
    choices=st.lists(st.integers(0, len(_SPELLERS) - 1), min_size=40, max_size=40),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_secret_masker_masks_any_mix_of_spellings(
    secret: str, choices: list[int], before: str, after: str
) -> None:
    spelled = "".join(_SPELLERS[n](c) for n, c in zip(choices, secret, strict=False))
    masked = SecretMasker([secret]).mask(before + spelled + after)
    assert MASK in masked
    assert secret not in masked
    assert spelled not in masked


# scrub: the error and everything chained to it --------------------------------------


class _Holder:
    """An object whose repr shows a secret and that scrub cannot rewrite."""

    def __repr__(self) -> str:
        return f"Holder(headers={{'Authorization': '{SECRET}'}})"


def _shown(err: BaseException) -> str:
    return "".join(traceback.format_exception(err)) + repr(err.args) + repr(vars(err))


def test_scrub_masks_the_error_its_cause_context_notes_and_attributes() -> None:
    reply = json.dumps({"echo": SECRET})
    try:
        json.loads(reply + "garbage")
    except json.JSONDecodeError as decode_error:
        cause = decode_error
    context = ValueError(f"while reading {quote(SECRET, safe='')}")
    context.add_note(f"note: {SECRET}")
    error = make_status_error(
        500,
        method="GET",
        url="https://api.example.com/v1/group/x",
        body=reply,
        headers={"x-request-id": f"req-{SECRET}"},
    )
    error.__cause__ = cause
    cause.__context__ = context

    assert MASKER.scrub(error) is error
    assert SECRET not in cause.doc
    for err in (error, cause, context):
        assert not MASKER.leaks(_shown(err))
    assert error.request_id == f"req-{MASK}"
    assert MASK in error.body
    assert error.__cause__ is cause
    assert cause.__context__ is context  # masked in place, so kept
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert not MASKER.leaks(repr(copy.__dict__) + str(copy))


def test_scrub_cuts_a_chained_exception_it_cannot_mask() -> None:
    error = ValueError("outer")
    inner = RuntimeError("inner")
    inner.holder = _Holder()  # type: ignore[attr-defined]
    error.__cause__ = inner
    MASKER.scrub(error)
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert not MASKER.leaks(_shown(error))


def test_scrub_masks_exception_group_members_and_cuts_a_group_that_still_leaks() -> None:
    error = ValueError("outer")
    error.__cause__ = ExceptionGroup("structuring", [ValueError(f"bad value {SECRET!r}")])
    MASKER.scrub(error)
    assert error.__cause__ is not None
    assert not MASKER.leaks(_shown(error))

    leaky = RuntimeError("member")
    leaky.holder = _Holder()  # type: ignore[attr-defined]
    error.__cause__ = ExceptionGroup("structuring", [leaky])
    MASKER.scrub(error)
    assert error.__cause__ is None


def test_scrub_stops_at_a_cycle_in_the_chain() -> None:
    first, second = ValueError(SECRET), ValueError("second")
    first.__context__, second.__context__ = second, first
    MASKER.scrub(first)
    assert first.args == (MASK,)


# URLs: how every URL is shown, and the secrets one carries ------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("redis://user:pa/ss#wo?rd@host:6379/0", "redis://user:***@host:6379/0"),
        (f"redis://user:{URL_PASSWORD}@host:6379/0", "redis://user:***@host:6379/0"),
        (f"redis://:{URL_PASSWORD}@host/1", "redis://:***@host/1"),
        (f"redis://user:{quote(URL_PASSWORD, safe='')}@host/1", "redis://user:***@host/1"),
        ("redis://user:p@ss@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://TOKEN@cache:6380", "rediss://***@cache:6380"),  # no `:`: may be a token
        ("redis://us/er:pw@cache:6380", "redis://***@cache:6380"),  # not a user name
        (f"redis://user:{URL_PASSWORD}@[::1]:6379/0", "redis://user:***@[::1]:6379/0"),
        ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
        (f"user:{URL_PASSWORD}@cache:6379", "user:***@cache:6379"),  # no scheme
        (f"redis:/user:{URL_PASSWORD}@cache", "redis:***@cache"),  # a scheme mistyped
        (f"http://user:{URL_PASSWORD}@proxy:3128", "http://user:***@proxy:3128"),
        ("http://proxy:3128/path@x", "http://proxy:***@x"),  # an @ later on: more masked
        ("redis://cache/0?password=se/cr#et&db=2", "redis://cache/0?password=***&db=2"),
        ("unix:///run/r.sock?db=1&Pass%77ord=sekret", "unix:///run/r.sock?db=1&Pass%77ord=***"),
        (f"unix://:{URL_PASSWORD}@/run/redis.sock", "unix://:***@/run/redis.sock"),
        ("redis://user:sekret@", "redis://user:***@"),
        ("", ""),
    ],
)
def test_redact_url_masks_the_user_info_up_to_the_last_at(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@given(
    user=st.text(st.sampled_from("abcxyz019._-"), max_size=8),
    password=st.text(_KEY_CHARS, min_size=8, max_size=30),
    host=st.sampled_from(["cache", "[::1]", "10.0.0.7"]),
    tail=st.sampled_from(["", ":6379", ":port/0", "/0?db=1", "/0#frag", ":6379/x/@y"]),
)
def test_redact_url_never_shows_a_password_whatever_it_holds(
    user: str, password: str, host: str, tail: str
) -> None:
    url = f"redis://{user}:{password}@{host}{tail}"
    assert redact_url(url) == f"redis://{user}:{MASK}@{url.rpartition('@')[2]}"


def _basic_token(credentials: str) -> str:
    return base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("http://proxy:3128", []),
        ("http://TOKEN@proxy:3128", ["TOKEN", _basic_token("TOKEN:")]),
        ("http://user:s3cret@proxy:3128", ["s3cret", _basic_token("user:s3cret")]),
        (
            "http://us%20er:s3%2Fcr%40et@proxy:3128",
            ["s3%2Fcr%40et", "s3/cr@et", _basic_token("us er:s3/cr@et")],
        ),
        ("redis://:pw@cache/0?password=q%2Bw+x", ["pw", _basic_token(":pw"), "q%2Bw+x", "q+w x"]),
    ],
)
def test_url_secrets_lists_the_password_and_the_basic_token(url: str, secrets: list[str]) -> None:
    assert url_secrets(url) == secrets


@pytest.mark.parametrize(
    "proxy",
    [
        "http://user:s3cret@proxy:3128",
        "http://us%20er:s3%2Fcr%40et@proxy:3128",
        "http://:only-password@proxy:3128",
        "http://user@proxy:3128",
        "http://us%C3%A9r:p%C3%A4ss@proxy:3128",  # Latin-1, as aiohttp encodes it
    ],
)
def test_url_secrets_holds_the_token_aiohttp_sends_for_a_proxy(proxy: str) -> None:
    auth = aiohttp.BasicAuth.from_url(yarl.URL(proxy))
    assert auth is not None
    assert auth.encode().removeprefix("Basic ") in url_secrets(proxy)

"""The client's settings and the rules they are checked by: pure, no I/O."""

from __future__ import annotations

import inspect
import math
import pickle
import ssl
from typing import Any

import pytest
from conftest import API_KEY, shows_password

from asyncgroups import (
    DEFAULT_RATE_LIMIT,
    ClientLimiter,
    GroupsClient,
    RetryPolicy,
    ValidationError,
)
from asyncgroups._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    RATE_LIMIT_DEFAULT,
    BorrowedSession,
    ClientSettings,
    check_number,
    in_flight_cap,
    request_tls,
)
from asyncgroups._secret import Secret
from asyncgroups._urls import misplaced_at

BASE = "https://api.example.com/v1"


def _settings(**kwargs: Any) -> ClientSettings:
    arguments: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": BASE,
        "timeout": 30.0,
        "max_connections": 32,
        "rate_limit": 80.0,
        "retry": RetryPolicy(),
        "allow_insecure_http": False,
        "ssl_context": None,
        "proxy": None,
        "user_agent": None,
        "max_body_size": 1024,
        "version": "asyncgroups/0 aiohttp/0",
    }
    arguments.update(kwargs)
    return ClientSettings.from_arguments(**arguments)


def test_settings_hold_the_checked_values() -> None:
    settings = _settings(base_url=BASE + "/", timeout=10, user_agent="job/1")
    assert settings.base_url == BASE
    assert settings.timeout == 10.0
    assert settings.connect_timeout == 9.0  # the attempt's time less 10%, at most 1 s
    assert settings.user_agent == "asyncgroups/0 aiohttp/0 job/1"
    assert isinstance(settings.api_key, Secret)


def test_settings_connect_timeout_leaves_at_most_a_second() -> None:
    assert _settings(timeout=30).connect_timeout == 29.0


def test_settings_repr_masks_the_api_key() -> None:
    assert API_KEY not in repr(_settings())
    assert "'***'" in repr(_settings())


def test_settings_repr_masks_the_proxy_password() -> None:
    shown = repr(_settings(proxy="http://user:s3cr%2Fet@proxy:3128"))
    assert "proxy='http://user:***@proxy:3128'" in shown
    assert "s3cr" not in shown


def test_settings_read_the_environment_names_the_cli_shares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(API_KEY_ENV, "from-env")
    monkeypatch.setenv(BASE_URL_ENV, "https://env.example.com/v1")
    settings = _settings(api_key=None, base_url=None)
    assert (str(settings.api_key), settings.base_url) == ("from-env", "https://env.example.com/v1")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"api_key": " "}, "api_key"),
        ({"base_url": "http://api.example.com"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"max_connections": 0}, "max_connections"),
        ({"rate_limit": math.nan}, "rate_limit"),
        ({"retry": 3}, "retry"),
        ({"ssl_context": "ca.pem"}, "ssl_context"),
        ({"proxy": "socks5://p:1"}, "proxy"),
        ({"user_agent": "a\nb"}, "user_agent"),
        ({"max_body_size": True}, "max_body_size"),
        ({"max_body_size": 0}, "max_body_size"),
    ],
)
def test_settings_refuse_bad_arguments_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("url", "misplaced"),
    [
        ("redis://cache:6379/0", False),
        ("redis://user:pw@cache:6379/0", False),
        ("redis://user:p@ss@cache:6379/0", False),  # the parser ends user-info at the last @
        ("redis://user:p%2Fss@cache:6379/0", False),
        ("redis://user:p/ss@cache:6379/0", True),
        ("redis://user:p?ss@cache:6379/0", True),
        ("redis://user:p#ss@cache:6379/0", True),
        ("http://proxy:3128/a@b", True),
        ("unix:///run/redis@6379.sock", True),
        ("unix:///run/redis%406379.sock", False),
        ("https://u:p@[::1", False),  # unparsable: the caller's own check refuses it
    ],
)
def test_misplaced_at_finds_an_at_the_parser_would_not_end_user_info_with(
    url: str, misplaced: bool
) -> None:
    assert misplaced_at(url) is misplaced


#: A password whose head a URL parser would take for a port, the rest for a path.
PORT_LIKE_PASSWORD = "4471/Xk9#Vm4?Wp2@Yt6"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"proxy": f"http://user:{PORT_LIKE_PASSWORD}@proxy:3128"}, "proxy"),
        ({"proxy": f"socks5://user:{PORT_LIKE_PASSWORD}@proxy:1080"}, "proxy"),
        ({"proxy": f"http://user:{PORT_LIKE_PASSWORD}@[::1:3128"}, "proxy"),
        ({"proxy": "http://user:4471%2FXk9%E2%82%ACVm4@proxy:3128"}, "proxy"),  # not Latin-1
        ({"proxy": "http://us%3Aer:4471%2FXk9%23Vm4@proxy:3128"}, "proxy"),  # ':' in the user
        ({"base_url": f"http://user:{PORT_LIKE_PASSWORD}@api.example.com/v1"}, "base_url"),
        ({"base_url": "http://user:4471/Xk9@api.example.com/v1"}, "base_url"),
        ({"base_url": f"https://:{PORT_LIKE_PASSWORD}@api.example.com/v1"}, "base_url"),
    ],
)
def test_settings_refuse_a_url_with_a_password_without_showing_it(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(**kwargs)
    assert info.value.field == field
    assert not shows_password(str(info.value), PORT_LIKE_PASSWORD), str(info.value)


@pytest.mark.parametrize(
    "proxy",
    ["http://user:s3cret@proxy:3128", "http://us%C3%A9r:p%C3%A4ss%2F%40@proxy:3128", "http://u@p:1"],
)
def test_settings_take_a_proxy_whose_credentials_aiohttp_can_send(proxy: str) -> None:
    assert _settings(proxy=proxy).proxy == proxy


def test_settings_refuse_a_proxy_from_the_environment_with_a_misplaced_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{PORT_LIKE_PASSWORD}@proxy:3128")
    with pytest.raises(ValidationError, match="percent-encode") as info:
        _settings()
    assert "the proxy from the environment has an '@'" in str(info.value)
    assert not shows_password(str(info.value), PORT_LIKE_PASSWORD), str(info.value)


@pytest.mark.parametrize(
    ("value", "kwargs", "ok"),
    [
        (1, {}, True),
        (0.5, {}, True),
        (0, {}, False),
        (-1.0, {}, False),
        (math.inf, {}, False),
        (math.nan, {}, False),
        (True, {}, False),
        ("1", {}, False),
        (None, {}, False),
        (1, {"integer": True, "minimum": 1}, True),
        (0, {"integer": True, "minimum": 1}, False),
        (1.0, {"integer": True, "minimum": 1}, False),
        (True, {"integer": True, "minimum": 1}, False),
    ],
)
def test_check_number(value: object, kwargs: dict[str, Any], ok: bool) -> None:
    if ok:
        check_number("n", value, **kwargs)
    else:
        with pytest.raises(ValidationError) as info:
            check_number("n", value, **kwargs)
        assert info.value.field == "n"
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("max_connections", "pool", "cap"), [(32, None, 32), (32, 0, 32), (32, 8, 8), (4, 100, 4)]
)
def test_in_flight_cap_is_the_smaller_of_the_cap_and_a_borrowed_pool(
    max_connections: int, pool: int | None, cap: int
) -> None:
    assert in_flight_cap(max_connections, pool) == cap


@pytest.mark.parametrize(("max_in_flight", "rate"), [(0, None), (1, 0.0), (1.5, None)])
def test_client_limiter_raises_validation_error(max_in_flight: Any, rate: float | None) -> None:
    with pytest.raises(ValidationError):
        ClientLimiter(max_in_flight, rate)


# limiter= and rate_limit= ---------------------------------------------------------------


@pytest.mark.parametrize("rate", [80.0, 10, DEFAULT_RATE_LIMIT])
def test_client_refuses_an_explicit_rate_limit_beside_a_limiter(rate: float | None) -> None:
    with pytest.raises(ValidationError, match="limiter") as info:
        GroupsClient(API_KEY, base_url=BASE, limiter=ClientLimiter(4), rate_limit=rate)
    assert info.value.field == "rate_limit"


def test_client_takes_rate_limit_none_beside_a_limiter() -> None:
    # No rate from the client: the limiter's own (none here) is the one that applies.
    client = GroupsClient(API_KEY, base_url=BASE, limiter=ClientLimiter(4), rate_limit=None)
    assert client.rate_limit is None


def test_client_with_a_limiter_reports_its_rate() -> None:
    client = GroupsClient(API_KEY, base_url=BASE, limiter=ClientLimiter(4, 5.0))
    assert client.rate_limit == 5.0
    assert client.limiter.rate == 5.0  # type: ignore[attr-defined]


def test_client_default_rate_limit_is_80_in_the_signature_and_repr() -> None:
    default = inspect.signature(GroupsClient).parameters["rate_limit"].default
    assert default is RATE_LIMIT_DEFAULT
    assert repr(default) == "DEFAULT_RATE_LIMIT"  # the public constant it stands for
    assert DEFAULT_RATE_LIMIT == 80.0
    client = GroupsClient(API_KEY, base_url=BASE)
    assert client.rate_limit == 80.0
    assert type(client.rate_limit) is float
    assert "rate_limit=80.0" in repr(client)


def test_default_rate_survives_pickling_as_itself() -> None:
    assert pickle.loads(pickle.dumps(RATE_LIMIT_DEFAULT)) is RATE_LIMIT_DEFAULT  # noqa: S301


# TLS and a borrowed session -------------------------------------------------------------


def _borrowed(tls: object, *, pinned: bool = False) -> BorrowedSession:
    return BorrowedSession(has_auth=False, tls=tls, pins_certificate=pinned, pool=None)


def _unverifying() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


VERIFYING = ssl.create_default_context()
PIN = object()  # stands for an aiohttp.Fingerprint: the rule only passes it on


@pytest.mark.parametrize(
    ("ssl_context", "borrowed", "https", "expected"),
    [
        (None, None, True, "system"),
        (VERIFYING, None, True, VERIFYING),
        (VERIFYING, _borrowed(_unverifying()), True, VERIFYING),  # an explicit one wins
        (None, _borrowed(VERIFYING), True, VERIFYING),  # a verifying borrowed one is kept
        (None, _borrowed(PIN, pinned=True), True, PIN),
        (VERIFYING, _borrowed(PIN, pinned=True), True, VERIFYING),
        (None, _borrowed(True), True, "system"),
        (None, _borrowed(False), False, "system"),  # plain http makes no TLS
        (None, _borrowed(False), True, "session"),
        (None, _borrowed(_unverifying()), True, "session"),
        (_unverifying(), None, True, "ssl_context"),
    ],
)
def test_request_tls(
    ssl_context: ssl.SSLContext | None,
    borrowed: BorrowedSession | None,
    https: bool,
    expected: object,
) -> None:
    if expected in ("session", "ssl_context"):
        with pytest.raises(ValidationError) as info:
            request_tls(ssl_context, borrowed, https=https)
        assert info.value.field == expected
        return
    tls = request_tls(ssl_context, borrowed, https=https)
    if expected == "system":
        assert isinstance(tls, ssl.SSLContext)
        assert tls.verify_mode == ssl.CERT_REQUIRED
        assert tls.check_hostname
    else:
        assert tls is expected


def test_settings_refuse_a_borrowed_session_with_auth() -> None:
    borrowed = BorrowedSession(has_auth=True, tls=True, pins_certificate=False, pool=None)
    with pytest.raises(ValidationError, match="auth=") as info:
        _settings(borrowed=borrowed)
    assert info.value.field == "session"


def test_settings_cap_requests_in_flight_by_a_borrowed_pool() -> None:
    borrowed = BorrowedSession(has_auth=False, tls=True, pins_certificate=False, pool=8)
    assert _settings(borrowed=borrowed).max_in_flight == 8

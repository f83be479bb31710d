"""The shared limiter's pure parts: URLs shown without passwords, settings checked early.

Nothing here connects to Redis: every check happens when the limiter is made, before
any event loop could open a connection.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as aioredis
from conftest import URL_PASSWORD, shows_password

from asyncgroups import GroupsClient, Limiter, ValidationError
from asyncgroups._limiter import CappedLimiter
from asyncgroups.contrib.redis import RedisLimiter, check_redis_url, redact_url

URL = "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:sekret@cache:6379/0", "redis://user:***@cache:6379/0"),
        ("redis://:sekret@cache/1", "redis://:***@cache/1"),
        ("rediss://user@cache:6380", "rediss://***@cache:6380"),
        ("redis://cache/0?password=sekret&db=2", "redis://cache/0?password=***&db=2"),
        ("unix:///run/redis.sock?db=1&password=sekret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://:p%40ss:w@cache/0", "redis://:***@cache/0"),
    ],
)
def test_redact_url_hides_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "http://user:sekret@cache:6379/0",
        "redis://",
        "redis://:sekret@",
        "redis://cache:port/0",
        "redis://cache:0/0",
        "redis://:sekret@cache/zero",
        "unix://",
        "cache:6379",
        "",
    ],
)
def test_check_redis_url_refuses_what_redis_cannot_connect_by(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        check_redis_url(url)
    assert info.value.field == "redis"
    assert "sekret" not in str(info.value)


@pytest.mark.parametrize("url", [URL, "rediss://u:p@cache:6380/3", "unix:///run/redis.sock"])
def test_check_redis_url_takes_redis_rediss_and_unix_urls(url: str) -> None:
    assert check_redis_url(url) == url


@pytest.mark.parametrize("value", [0, -1.0, 0.5, 1e-9, math.inf, math.nan, "80", True, None])
def test_redis_limiter_refuses_a_bad_rate_before_connecting(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        RedisLimiter(URL, rate=value)
    assert info.value.field == "rate"


@pytest.mark.parametrize("name", ["", "two words", "{tag}", "tab\there", "é", "x" * 201, 7])
def test_redis_limiter_refuses_a_name_that_cannot_be_a_key(name: Any) -> None:
    with pytest.raises(ValidationError) as info:
        RedisLimiter(URL, name=name)
    assert info.value.field == "name"


@pytest.mark.parametrize(
    ("option", "value"),
    [("fallback_rate", 0), ("fallback_rate", -5.0), ("timeout", 0), ("retry_interval", math.inf)],
)
def test_redis_limiter_refuses_bad_options(option: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        RedisLimiter(URL, **{option: value})
    assert info.value.field == option


#: Bad Redis URLs holding `URL_PASSWORD`, as written and percent-encoded.
BAD_URLS_WITH_A_PASSWORD = [
    f"redis://user:{URL_PASSWORD}@cache:6379/0",
    f"redis://:{URL_PASSWORD}@cache:6379/0",
    f"redis://user:{URL_PASSWORD}@[::1]:6379/0",
    f"redis://user:{URL_PASSWORD}@cache:6379/0#",
    f"unix://:{URL_PASSWORD}@/run/redis.sock",
    f"user:{URL_PASSWORD}@cache:6379",
    f"http://user:{URL_PASSWORD}@cache:6379/0",
    f"redis://user:{quote(URL_PASSWORD, safe='')}@cache:port/0",
    f"redis://:{quote(URL_PASSWORD, safe='')}@cache/zero",
    f"redis://cache:6379/0?password={quote(URL_PASSWORD, safe='')}#@",
    "redis://user:Zq7:Xk9@cache:nope/0",
]


@pytest.mark.parametrize("url", BAD_URLS_WITH_A_PASSWORD)
def test_redis_limiter_refuses_a_bad_url_without_showing_its_password(url: str) -> None:
    with pytest.raises(ValidationError) as info:
        RedisLimiter(url)
    assert info.value.field == "redis"
    assert not shows_password(str(info.value)), str(info.value)
    assert not shows_password(repr(info.value)), repr(info.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://app:sekret@cache:6379/2", "redis://app:***@cache:6379/2"),
        (
            f"redis://app:{quote(URL_PASSWORD, safe='')}@cache:6379/2",
            "redis://app:***@cache:6379/2",
        ),
        (f"redis://app:{URL_PASSWORD[:3]}%40@[::1]:6379/2", "redis://app:***@[::1]:6379/2"),
    ],
)
def test_redis_limiter_shows_where_it_connects_without_the_password(url: str, shown: str) -> None:
    limiter = RedisLimiter(url, name="acct-1", rate=40)
    assert limiter.location == shown
    assert "sekret" not in repr(limiter)
    assert not shows_password(repr(limiter))
    assert repr(limiter) == f"RedisLimiter({shown!r}, name='acct-1', rate=40)"


def test_redis_limiter_describes_a_borrowed_client_without_its_password() -> None:
    client = aioredis.Redis(host="cache", port=6380, db=3, password="sekret")
    limiter = RedisLimiter(client)
    assert limiter.location == "redis://cache:6380/3"
    assert "sekret" not in repr(limiter)


def test_redis_limiter_is_a_limiter() -> None:
    assert isinstance(RedisLimiter(URL), Limiter)


def test_client_keeps_its_own_cap_in_front_of_a_redis_limiter() -> None:
    limiter = RedisLimiter(URL, rate=20)
    client = GroupsClient("k", base_url="http://127.0.0.1:1/v1", limiter=limiter, max_connections=7)
    assert client.limiter is limiter
    capped = client._pipeline.limiter
    assert isinstance(capped, CappedLimiter)
    assert capped.inner is limiter
    assert capped.max_in_flight == 7


def test_client_refuses_a_rate_limit_beside_a_redis_limiter() -> None:
    with pytest.raises(ValidationError, match="limiter"):
        GroupsClient("k", base_url="http://127.0.0.1:1/v1", limiter=RedisLimiter(URL), rate_limit=5)

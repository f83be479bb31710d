"""What each groups call sends and how its reply is read, against canned responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from conftest import API_KEY, KEY
from yarl import URL

from asyncgroups import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GroupPatch,
    GroupsClient,
    GroupStatus,
    NewGroup,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    Subscription,
    SubscriptionLockedError,
    UnexpectedResponseError,
    ValidationError,
    __version__,
)
from asyncgroups.errors import KEY_REFUSED_HINT, WRITE_ONLY_HINT

if TYPE_CHECKING:
    from conftest import MockAPI

BASE = "https://api.example.com/v1"
NEW_KEY = "99ec3e7f-ef04-bbbb-a3d7-e30736faaaaa"
EVENT = "31a17cce-cccc-4ee3-99bb-6144c6a3bbbb"
GROUP_URL = f"{BASE}/group/{KEY}"
CAL = "https://example.com/team.ics"


def _read(**fields: Any) -> list[dict[str, Any]]:
    obj: dict[str, Any] = {
        "name": "Team",
        "status": "published",
        "internal_note": None,
        "subscription": "no",
        "subscription_cal_url": None,
        "layout": None,
        "cta": False,
        "cta_block": None,
        "date_updated": "2023-11-24T15:05:14.079Z",
        "date_created": "2023-11-24T15:05:13.007Z",
        "events": [],
    }
    obj.update(fields)
    return [obj]


def _sent(mock: MockAPI) -> list[tuple[str, str, dict[str, str], Any]]:
    """Every request sent: method, URL, headers and decoded JSON body (None without one)."""
    out = []
    for (method, url), calls in mock.requests.items():
        for call in calls:
            data = call.kwargs.get("data")
            body = json.loads(data) if data is not None else None
            out.append((method, str(url), dict(call.kwargs["headers"]), body))
    return out


def _requests(mock: MockAPI) -> list[tuple[str, str, Any]]:
    return [(method, url, body) for method, url, _, body in _sent(mock)]


@pytest.fixture
async def client() -> AsyncIterator[GroupsClient]:
    async with GroupsClient(API_KEY, base_url=BASE, retry=None) as client:
        yield client


# Reads ------------------------------------------------------------------------------


async def test_get_sends_a_get_to_the_group_url(client: GroupsClient, mock_api: MockAPI) -> None:
    mock_api.get(GROUP_URL, payload=_read())
    await client.groups.get(KEY)
    assert _requests(mock_api) == [("GET", GROUP_URL, None)]


async def test_get_sends_the_api_key_raw_in_authorization(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read())
    await client.groups.get(KEY)
    [(_, _, headers, _)] = _sent(mock_api)
    assert headers["Authorization"] == API_KEY
    assert headers["Accept"] == "application/json"
    assert "Content-Type" not in headers


async def test_get_returns_the_group_under_the_requested_prokey(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    payload = _read(events=[{"prokey": [EVENT]}], landingpage="lp-1", rsvp=True)
    mock_api.get(GROUP_URL, payload=payload)
    group = await client.groups.get(KEY)
    assert group.prokey == KEY
    assert group.name == "Team"
    assert group.status is GroupStatus.PUBLISHED
    assert group.event_prokeys == (EVENT,)
    assert group.landingpage == "lp-1"
    assert group.extra == {"rsvp": True}


async def test_get_reads_the_bare_object_shape_too(client: GroupsClient, mock_api: MockAPI) -> None:
    mock_api.get(GROUP_URL, payload=_read(events=[EVENT])[0])
    assert (await client.groups.get(KEY)).event_prokeys == (EVENT,)


async def test_requests_carry_a_user_agent_naming_library_and_caller(
    mock_api: MockAPI,
) -> None:
    mock_api.get(GROUP_URL, payload=_read())
    async with GroupsClient(API_KEY, base_url=BASE, user_agent="sync-job/2.1") as client:
        await client.groups.get(KEY)
    [(_, _, headers, _)] = _sent(mock_api)
    agent = headers["User-Agent"]
    assert agent.startswith(f"asyncgroups/{__version__} aiohttp/")
    assert agent.endswith(" sync-job/2.1")


async def test_list_gets_group_all_then_the_next_page_until_one_is_short(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(f"{BASE}/group/all", payload=[{"prokey": KEY, "label": "Team"}, NEW_KEY])
    mock_api.get(f"{BASE}/group/all?page=2", payload=[])
    summaries = await client.groups.list()
    assert _requests(mock_api) == [
        ("GET", f"{BASE}/group/all", None),
        ("GET", f"{BASE}/group/all?page=2", None),
    ]
    assert [(s.prokey, s.name) for s in summaries] == [(KEY, "Team"), (NEW_KEY, None)]


async def test_list_of_an_empty_account_sends_one_request(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(f"{BASE}/group/all", payload=[])
    assert await client.groups.list() == []
    assert _requests(mock_api) == [("GET", f"{BASE}/group/all", None)]


async def test_latest_gets_group_latest_and_reads_the_key_from_the_reply(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(f"{BASE}/group/latest", payload=_read(id=NEW_KEY))
    group = await client.groups.latest()
    assert _requests(mock_api) == [("GET", f"{BASE}/group/latest", None)]
    assert group.prokey == NEW_KEY


# Create -----------------------------------------------------------------------------


async def test_create_posts_the_new_group_as_json(client: GroupsClient, mock_api: MockAPI) -> None:
    mock_api.post(f"{BASE}/group", payload={"success": "Created", "id": NEW_KEY})
    new = NewGroup(
        "Team",
        subscription=Subscription.EXTERNAL,
        subscription_cal_url=CAL,
        cta=False,
        landingpage="lp-1",
        public_event_overview=True,
    )
    assert await client.groups.create(new) == NEW_KEY
    [(method, url, headers, body)] = _sent(mock_api)
    assert (method, url) == ("POST", f"{BASE}/group")
    assert headers["Authorization"] == API_KEY
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "name": "Team",
        "subscription": "external",
        "subscription_cal_url": CAL,
        "cta": False,
        "landingpage": "lp-1",
        "public_event_overview": True,
    }


async def test_create_sends_no_field_left_as_none(client: GroupsClient, mock_api: MockAPI) -> None:
    mock_api.post(f"{BASE}/group", payload={"success": "Created", "id": NEW_KEY})
    await client.groups.create(NewGroup("Team"))
    assert _requests(mock_api) == [
        ("POST", f"{BASE}/group", {"name": "Team", "subscription": "no"})
    ]


async def test_create_rejects_what_is_not_a_new_group(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    with pytest.raises(ValidationError, match="NewGroup"):
        await client.groups.create({"name": "Team"})  # type: ignore[arg-type]
    assert mock_api.requests == {}


async def test_create_with_a_reply_without_id_raises_unexpected_response(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.post(f"{BASE}/group", payload={"success": "Created"})
    with pytest.raises(UnexpectedResponseError, match="POST /group: 200"):
        await client.groups.create(NewGroup("Team"))


# Update -----------------------------------------------------------------------------


async def test_update_patches_only_the_fields_the_patch_carries(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.patch(GROUP_URL, payload={"success": "Updated"})
    patch = GroupPatch(name="Renamed", internal_note=None, status=GroupStatus.DRAFT)
    assert await client.groups.update(KEY, patch) is True
    [(method, url, headers, body)] = _sent(mock_api)
    assert (method, url) == ("PATCH", GROUP_URL)
    assert headers["Authorization"] == API_KEY
    assert headers["Content-Type"] == "application/json"
    assert body == {"name": "Renamed", "status": "draft", "internal_note": None}


async def test_update_sends_landingpage_null_and_overview_false(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.patch(GROUP_URL, payload={"success": "Updated"})
    patch = GroupPatch(landingpage=None, public_event_overview=False)
    assert await client.groups.update(KEY, patch) is True
    assert _requests(mock_api) == [
        ("PATCH", GROUP_URL, {"landingpage": None, "public_event_overview": False})
    ]


async def test_update_with_an_empty_patch_sends_nothing(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    assert await client.groups.update(KEY, GroupPatch()) is False
    assert await client.groups.update(KEY, GroupPatch(), skip_unchanged=True) is False
    assert mock_api.requests == {}
    assert client.stats.updates_sent == 0


async def test_update_skip_unchanged_reads_first_and_sends_only_differing_fields(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read(name="Team", layout="style-1", cta=False))
    mock_api.patch(GROUP_URL, payload={"success": "Updated"})
    patch = GroupPatch(name="Team", layout="style-2", cta=False)
    assert await client.groups.update(KEY, patch, skip_unchanged=True) is True
    assert _requests(mock_api) == [
        ("GET", GROUP_URL, None),
        ("PATCH", GROUP_URL, {"layout": "style-2"}),
    ]


async def test_update_skip_unchanged_sends_no_patch_when_nothing_differs(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read(name="Team", status="published"))
    patch = GroupPatch(name="Team", status=GroupStatus.PUBLISHED)
    assert await client.groups.update(KEY, patch, skip_unchanged=True) is False
    assert _requests(mock_api) == [("GET", GROUP_URL, None)]
    assert client.stats.updates_sent == 0


async def test_update_without_skip_unchanged_sends_the_patch_without_reading(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.patch(GROUP_URL, payload={})
    await client.groups.update(KEY, GroupPatch(name="Team"))
    assert [m for m, _, _ in _requests(mock_api)] == ["PATCH"]


async def test_update_subscription_change_with_events_raises_locked_and_sends_no_patch(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read(subscription="no", events=[{"prokey": [EVENT]}]))
    patch = GroupPatch(subscription=Subscription.EXTERNAL, subscription_cal_url=CAL)
    with pytest.raises(SubscriptionLockedError) as info:
        await client.groups.update(KEY, patch)
    assert info.value.prokey == KEY
    assert info.value.linked_events == 1
    assert _requests(mock_api) == [("GET", GROUP_URL, None)]
    assert client.stats.updates_sent == 0


async def test_update_subscription_change_without_events_reads_then_patches(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read(subscription="no", events=[]))
    mock_api.patch(GROUP_URL, payload={})
    patch = GroupPatch(subscription=Subscription.EXTERNAL, subscription_cal_url=CAL)
    assert await client.groups.update(KEY, patch) is True
    assert _requests(mock_api) == [
        ("GET", GROUP_URL, None),
        ("PATCH", GROUP_URL, {"subscription": "external", "subscription_cal_url": CAL}),
    ]


async def test_update_same_subscription_with_events_sends_the_other_fields(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, payload=_read(subscription="no", events=[EVENT]))
    mock_api.patch(GROUP_URL, payload={})
    assert await client.groups.update(KEY, GroupPatch(name="New", subscription="no")) is True
    assert _requests(mock_api)[-1] == ("PATCH", GROUP_URL, {"name": "New"})


async def test_update_counts_updates_sent_and_estimated_credits(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.patch(GROUP_URL, payload={}, repeat=True)
    for n in range(6):
        await client.groups.update(KEY, GroupPatch(name=f"Team {n}"))
    assert client.stats.updates_sent == 6
    assert client.stats.estimated_credits == 1


async def test_update_rejects_what_is_not_a_patch(client: GroupsClient, mock_api: MockAPI) -> None:
    with pytest.raises(ValidationError, match="GroupPatch"):
        await client.groups.update(KEY, {"name": "x"})  # type: ignore[arg-type]
    assert mock_api.requests == {}


# Delete -----------------------------------------------------------------------------


async def test_delete_sends_a_delete_to_the_group_url(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(GROUP_URL, payload={"success": "Deleted"})
    await client.groups.delete(KEY)
    [(method, url, headers, body)] = _sent(mock_api)
    assert (method, url, body) == ("DELETE", GROUP_URL, None)
    assert headers["Authorization"] == API_KEY


async def test_delete_missing_group_raises_not_found(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(GROUP_URL, status=404, payload={"message": "No entry found"})
    with pytest.raises(NotFoundError, match="No entry found"):
        await client.groups.delete(KEY)


async def test_delete_missing_ok_ignores_a_missing_group(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.delete(GROUP_URL, status=404, payload={"message": "No entry found"})
    assert await client.groups.delete(KEY, missing_ok=True) is None
    assert [method for method, *_ in _sent(mock_api)] == ["DELETE"]  # asked once, no retry


@pytest.mark.parametrize(("status", "error"), [(403, PermissionDeniedError), (500, ServerError)])
async def test_delete_missing_ok_still_raises_other_errors(
    client: GroupsClient, mock_api: MockAPI, status: int, error: type[APIError]
) -> None:
    mock_api.delete(GROUP_URL, status=status, payload={"message": "nope"})
    with pytest.raises(error):
        await client.groups.delete(KEY, missing_ok=True)


# Keys are checked before anything is sent --------------------------------------------

_BAD_KEYS = [
    "../all",
    "all",
    "latest",
    f"{KEY}/..",
    "a/b",
    "%2e%2e",
    f"{KEY}?x",
    f" {KEY}",
    f"{KEY}\n",
    "",
]


def _calls(client: GroupsClient, key: str) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: client.groups.get(key),
        lambda: client.groups.update(key, GroupPatch(name="x")),
        lambda: client.groups.update(key, GroupPatch()),
        lambda: client.groups.delete(key),
        lambda: client.groups.delete(key, missing_ok=True),
    ]


@pytest.mark.parametrize("key", _BAD_KEYS)
async def test_operations_reject_a_bad_prokey_before_any_request(
    client: GroupsClient, mock_api: MockAPI, key: str
) -> None:
    for call in _calls(client, key):
        with pytest.raises(ValidationError) as info:
            await call()
        assert info.value.field == "prokey"
    assert mock_api.requests == {}
    assert client.stats.requests == 0


# Error mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (418, APIError),
        (302, UnexpectedResponseError),
    ],
)
async def test_get_maps_status_to_error(
    client: GroupsClient, mock_api: MockAPI, status: int, error: type[APIError]
) -> None:
    mock_api.get(
        GROUP_URL,
        status=status,
        payload={"message": "server says no"},
        headers={"X-Request-Id": "req-42"},
    )
    with pytest.raises(error) as info:
        await client.groups.get(KEY)
    err = info.value
    assert type(err) is error
    assert err.status == status
    assert err.method == "GET"
    assert err.url == GROUP_URL
    assert err.request_id == "req-42"
    hint = {401: f" ({KEY_REFUSED_HINT})", 403: f" ({WRITE_ONLY_HINT})"}.get(status, "")
    assert str(err) == f"GET /group/{KEY}: {status} server says no{hint} (request id req-42)"


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("POST", lambda c: c.groups.create(NewGroup("Team"))),
        ("PATCH", lambda c: c.groups.update(KEY, GroupPatch(name="x"))),
        ("DELETE", lambda c: c.groups.delete(KEY)),
    ],
)
async def test_writes_map_status_to_error_with_method_and_path(
    client: GroupsClient,
    mock_api: MockAPI,
    method: str,
    call: Callable[[GroupsClient], Awaitable[object]],
) -> None:
    url = f"{BASE}/group" if method == "POST" else GROUP_URL
    mock_api.add(url, method, status=422, payload={"message": "name is required"})
    with pytest.raises(BadRequestError) as info:
        await call(client)
    assert str(info.value) == f"{method} {URL(url).path.removeprefix('/v1')}: 422 name is required"


async def test_error_keeps_a_truncated_body(client: GroupsClient, mock_api: MockAPI) -> None:
    mock_api.get(GROUP_URL, status=502, body="<html>" + "x" * 50_000 + "</html>")
    with pytest.raises(ServerError) as info:
        await client.groups.get(KEY)
    assert info.value.message == "Bad Gateway (HTML body)"
    assert 0 < len(info.value.body) <= 1000


@pytest.mark.parametrize(
    "body", ["not json", "{", '{"name": 5, "status": []}', "[]", '[{"name": "a"}, {"name": "b"}]']
)
async def test_get_with_a_reply_that_is_not_a_group_raises_unexpected_response(
    client: GroupsClient, mock_api: MockAPI, body: str
) -> None:
    mock_api.get(GROUP_URL, body=body, content_type="application/json")
    with pytest.raises(UnexpectedResponseError, match="not the documented JSON") as info:
        await client.groups.get(KEY)
    assert info.value.status == 200
    assert str(info.value).startswith(f"GET /group/{KEY}: 200 ")


async def test_get_with_an_empty_reply_raises_unexpected_response(
    client: GroupsClient, mock_api: MockAPI
) -> None:
    mock_api.get(GROUP_URL, body="")
    with pytest.raises(UnexpectedResponseError):
        await client.groups.get(KEY)

"""The fake server against the Groups API documentation, over real sockets.

Talks to it with a plain aiohttp session (not the client), and with raw sockets where
a dropped connection must be told apart from aiohttp's own retry of idempotent
requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import attrs
import pytest

from asyncgroups.testing import FakeGroupsServer, Faults

DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
CAL_URL = "https://calendar.example.com/team.ics"
OLD = "2020-01-01T00:00:00.000Z"


class Reply:
    """A reply read in full: status, headers, text and (when JSON) the parsed body."""

    def __init__(self, status: int, headers: Any, text: str) -> None:
        self.status = status
        self.headers = headers
        self.text = text
        try:
            self.json: Any = json.loads(text)
        except ValueError:
            self.json = None


Call = Callable[..., Awaitable[Reply]]


@pytest.fixture
async def server() -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def caller(session: aiohttp.ClientSession, fake: FakeGroupsServer) -> Call:
    async def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = "default",
        data: bytes | None = None,
    ) -> Reply:
        headers = {}
        if key is not None:
            headers["Authorization"] = fake.api_key if key == "default" else key
        async with session.request(
            method, fake.url + path, json=body, data=data, headers=headers
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.text())

    return call


@pytest.fixture
def call(session: aiohttp.ClientSession, server: FakeGroupsServer) -> Call:
    return caller(session, server)


async def raw_request(fake: FakeGroupsServer, method: str, path: str, body: Any = None) -> bytes:
    """Send one request on a fresh socket and read until the server closes it.

    Unlike aiohttp, this never retries, so a dropped connection shows: b"" for a close
    without an answer, ConnectionResetError for a reset.
    """
    payload = b"" if body is None else json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    try:
        writer.write(
            f"{method} /v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {fake.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


# Auth ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "Bearer test-key", "wrong-key", ""])
async def test_requests_without_the_raw_key_are_unauthorized(
    call: Call, server: FakeGroupsServer, key: str | None
) -> None:
    prokey = server.add_group("Team")
    reply = await call("GET", f"/group/{prokey}", key=key)
    assert reply.status == 401
    assert reply.json == {"message": "Unauthorized"}


async def test_unauthorized_writes_change_nothing(call: Call, server: FakeGroupsServer) -> None:
    prokey = server.add_group("Team")
    assert (await call("DELETE", f"/group/{prokey}", key="nope")).status == 401
    assert (await call("POST", "/group", {"name": "x"}, key="nope")).status == 401
    assert list(server.groups) == [prokey]


# Reads -----------------------------------------------------------------------------


async def test_get_answers_the_documented_list_shape(call: Call, server: FakeGroupsServer) -> None:
    prokey = server.add_group("My events", events=2)
    events = list(server.groups[prokey]["events"])
    reply = await call("GET", f"/group/{prokey}")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert isinstance(reply.json, list)
    assert len(reply.json) == 1
    group = reply.json[0]
    assert list(group) == [
        "name",
        "status",
        "internal_note",
        "subscription",
        "subscription_cal_url",
        "layout",
        "cta",
        "cta_block",
        "date_updated",
        "date_created",
        "events",
    ]
    assert group["name"] == "My events"
    assert group["status"] == "published"
    assert group["subscription"] == "no"
    assert group["cta"] is False
    assert group["events"] == [{"prokey": [events[0]]}, {"prokey": [events[1]]}]


async def test_get_in_object_shape_answers_a_bare_object_with_string_events(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeGroupsServer(shape="object") as fake:
        prokey = fake.add_group("Team", events=1)
        reply = await caller(session, fake)("GET", f"/group/{prokey}")
    assert reply.status == 200
    assert isinstance(reply.json, dict)
    assert "prokey" not in reply.json
    assert reply.json["events"] == list(fake.groups[prokey]["events"])
    assert reply.json["landingpage"] is None


async def test_object_shape_reads_carry_landingpage_and_overview_as_written(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeGroupsServer(shape="object") as fake:
        call = caller(session, fake)
        body = {"name": "Team", "landingpage": "lp-1", "public_event_overview": True}
        prokey = (await call("POST", "/group", body)).json["prokey"]
        read = (await call("GET", f"/group/{prokey}")).json
        assert (read["landingpage"], read["public_event_overview"]) == ("lp-1", True)
        await call("PATCH", f"/group/{prokey}", {"landingpage": None})
        read = (await call("GET", f"/group/{prokey}")).json
        assert (read["landingpage"], read["public_event_overview"]) == (None, True)


async def test_get_carries_extra_seeded_fields(call: Call, server: FakeGroupsServer) -> None:
    prokey = server.add_group("Team", public_event_overview=True, layout="style-1")
    group = (await call("GET", f"/group/{prokey}")).json[0]
    assert group["public_event_overview"] is True
    assert group["layout"] == "style-1"


async def test_dates_use_the_documented_format(call: Call) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    created = await call("POST", "/group", {"name": "Team"})
    group = (await call("GET", f"/group/{created.json['id']}")).json[0]
    for field in ("date_created", "date_updated"):
        assert DATE.fullmatch(group[field]), group[field]
        moment = datetime.strptime(group[field], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before <= moment <= datetime.now(UTC) + timedelta(seconds=1)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("key", [str(uuid.UUID(int=1, version=4)), "not-a-key", "all-of-them"])
async def test_unknown_keys_answer_404_no_entry_found(call: Call, method: str, key: str) -> None:
    reply = await call(method, f"/group/{key}", {"name": "x"} if method == "PATCH" else None)
    assert reply.status == 404
    assert reply.json == {"message": "No entry found"}


async def test_list_all_answers_prokeys_and_names(call: Call, server: FakeGroupsServer) -> None:
    first = server.add_group("First")
    second = server.add_group("Second")
    reply = await call("GET", "/group/all")
    assert reply.status == 200
    assert reply.json == [{"prokey": first, "name": "First"}, {"prokey": second, "name": "Second"}]


async def test_list_all_in_object_shape_answers_plain_ids(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(shape="object") as fake:
        keys = [fake.add_group("A"), fake.add_group("B")]
        reply = await caller(session, fake)("GET", "/group/all")
    assert reply.json == keys


async def test_list_all_of_an_empty_account_is_empty(call: Call) -> None:
    reply = await call("GET", "/group/all")
    assert (reply.status, reply.json) == (200, [])


async def test_list_all_pages_by_800_in_creation_order(
    call: Call, server: FakeGroupsServer
) -> None:
    keys = [server.add_group(f"G{n}") for n in range(1_700)]
    first = await call("GET", "/group/all")
    assert (await call("GET", "/group/all?page=1")).json == first.json
    assert [item["prokey"] for item in first.json] == keys[:800]
    second = await call("GET", "/group/all?page=2")
    third = await call("GET", "/group/all?page=3")
    assert [item["prokey"] for item in second.json] == keys[800:1_600]
    assert [item["prokey"] for item in third.json] == keys[1_600:]
    past = await call("GET", "/group/all?page=4")
    assert (past.status, past.json) == (200, [])


@pytest.mark.parametrize("page", ["0", "-1", "two", "1.5", "", "%C2%B2"])
async def test_list_all_refuses_a_bad_page_with_a_json_400(call: Call, page: str) -> None:
    reply = await call("GET", f"/group/all?page={page}")
    assert reply.status == 400
    assert "page must be a positive whole number" in reply.json["message"]


async def test_list_all_page_size_is_settable_and_none_ignores_page(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeGroupsServer(page_size=2) as fake:
        keys = [fake.add_group(f"G{n}") for n in range(5)]
        call = caller(session, fake)
        assert (await call("GET", "/group/all?page=3")).json == [
            {"prokey": keys[4], "name": "G4"}
        ]
    async with FakeGroupsServer(page_size=None, shape="object") as fake:
        keys = [fake.add_group(f"G{n}") for n in range(900)]
        call = caller(session, fake)
        assert (await call("GET", "/group/all?page=2")).json == keys
        assert (await call("GET", "/group/all?page=zero")).json == keys
    for bad in (0, -3, True, 1.5):
        with pytest.raises(ValueError, match="page_size"):
            FakeGroupsServer(page_size=bad)  # type: ignore[arg-type]


async def test_latest_answers_the_newest_group_with_its_id(
    call: Call, server: FakeGroupsServer
) -> None:
    older = server.add_group("Older")
    newest = (await call("POST", "/group", {"name": "Newest"})).json["id"]
    reply = await call("GET", "/group/latest")
    assert reply.status == 200
    assert len(reply.json) == 1
    assert reply.json[0]["id"] == newest
    assert reply.json[0]["name"] == "Newest"
    await call("DELETE", f"/group/{newest}")
    assert (await call("GET", "/group/latest")).json[0]["id"] == older


async def test_latest_in_object_shape_carries_prokey(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(shape="object") as fake:
        prokey = fake.add_group("Team", events=1)
        reply = await caller(session, fake)("GET", "/group/latest")
    assert reply.json["prokey"] == prokey
    assert reply.json["events"] == list(fake.groups[prokey]["events"])


async def test_latest_of_an_empty_account_is_404(call: Call) -> None:
    reply = await call("GET", "/group/latest")
    assert (reply.status, reply.json) == (404, {"message": "No entry found"})


async def test_unknown_routes_and_methods_are_refused(call: Call) -> None:
    assert (await call("GET", "/groups")).status == 404
    assert (await call("GET", "/group")).status == 405
    assert (await call("POST", "/group/all", {"name": "x"})).status == 405


# Create ----------------------------------------------------------------------------


async def test_create_answers_the_new_key_and_stores_a_published_group(
    call: Call, server: FakeGroupsServer
) -> None:
    reply = await call("POST", "/group", {"name": "Team", "internal_note": "note", "cta": True})
    assert reply.status == 201
    assert reply.json["success"] == "Created"
    prokey = reply.json["id"]
    assert uuid.UUID(prokey).version == 4
    stored = server.groups[prokey]
    assert stored["name"] == "Team"
    assert stored["status"] == "published"
    assert stored["internal_note"] == "note"
    assert stored["cta"] is True
    assert stored["events"] == ()


async def test_create_in_object_shape_answers_the_current_documented_reply(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeGroupsServer(shape="object") as fake:
        reply = await caller(session, fake)("POST", "/group", {"name": "Team"})
        assert reply.status == 201
        assert reply.json == {
            "status": "success",
            "message": "created",
            "prokey": reply.json["prokey"],
        }
        assert fake.groups[reply.json["prokey"]]["name"] == "Team"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Team", "subscription": "external", "subscription_cal_url": CAL_URL},
        {"name": "Team", "subscription": "external", "subscription_cal_url": "http://x/c.ics"},
        {"name": "Team", "subscription": "children"},
        {"name": "Team", "subscription": "no", "subscription_cal_url": None},
        {"name": "Team", "status": "draft", "layout": None, "cta": None, "cta_block": "b"},
        {"name": "Team", "landingpage": "lp-1", "public_event_overview": True},
        {"name": "Team", "landingpage": None, "public_event_overview": None},
    ],
)
async def test_create_accepts_documented_bodies(
    call: Call, server: FakeGroupsServer, body: dict[str, Any]
) -> None:
    reply = await call("POST", "/group", body)
    assert reply.status == 201, reply.text
    stored = server.groups[reply.json["id"]]
    assert {k: stored[k] for k in body} == body


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 3}, "name"),
        ({"name": "x", "subscription": "weekly"}, "subscription"),
        ({"name": "x", "subscription": "external"}, "subscription_cal_url"),
        ({"name": "x", "subscription": "external", "subscription_cal_url": None}, "requires"),
        (
            {"name": "x", "subscription": "external", "subscription_cal_url": "ftp://x/c.ics"},
            "http",
        ),
        ({"name": "x", "subscription_cal_url": CAL_URL}, "external"),
        ({"name": "x", "subscription": "children", "subscription_cal_url": CAL_URL}, "external"),
        ({"name": "x", "events": []}, "events"),
        ({"name": "x", "prokey": "k"}, "prokey"),
        ({"name": "x", "cta": "yes"}, "cta"),
        ({"name": "x", "internal_note": 5}, "internal_note"),
        ({"name": "x", "landingpage": 7}, "The field landingpage must be a string or null"),
        ({"name": "x", "public_event_overview": "yes"}, "public_event_overview must be true"),
        ({"name": "x", "status": "archived"}, "status"),
        (["name"], "JSON object"),
    ],
)
async def test_create_refuses_invalid_bodies_with_400(
    call: Call, server: FakeGroupsServer, body: Any, words: str
) -> None:
    reply = await call("POST", "/group", body)
    assert reply.status == 400
    assert words in reply.json["message"]
    assert not server.groups


async def test_create_refuses_a_body_that_is_not_json(call: Call) -> None:
    reply = await call("POST", "/group", data=b"name=Team")
    assert reply.status == 400
    assert "JSON object" in reply.json["message"]


# Update ----------------------------------------------------------------------------


async def test_update_applies_fields_and_moves_date_updated(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Old", date_created=OLD, date_updated=OLD)
    reply = await call("PATCH", f"/group/{prokey}", {"name": "New", "internal_note": None})
    assert (reply.status, reply.json) == (200, {"success": "Updated"})
    stored = server.groups[prokey]
    assert stored["name"] == "New"
    assert stored["internal_note"] is None
    assert stored["date_created"] == OLD
    assert stored["date_updated"] != OLD
    assert DATE.fullmatch(stored["date_updated"])
    assert server.updates == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": ""}, "name"),
        ({"subscription": "external"}, "subscription_cal_url"),
        ({"subscription_cal_url": CAL_URL}, "external"),
        ({"subscription_cal_url": "webcal://x/c.ics"}, "http"),
        ({"status": "deleted"}, "status"),
        ({"landingpage": {"url": None}}, "The field landingpage must be a string or null"),
        ({"public_event_overview": 1}, "The field public_event_overview must be true"),
        ("name", "JSON object"),
    ],
)
async def test_update_refuses_what_create_refuses(
    call: Call, server: FakeGroupsServer, body: Any, words: str
) -> None:
    prokey = server.add_group("Team")
    before = dict(server.groups[prokey])
    reply = await call("PATCH", f"/group/{prokey}", body)
    assert reply.status == 400
    assert words in reply.json["message"]
    assert dict(server.groups[prokey]) == before
    assert server.updates == 0


async def test_update_to_external_is_checked_against_the_stored_url(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    body = {"subscription": "external", "subscription_cal_url": CAL_URL}
    assert (await call("PATCH", f"/group/{prokey}", body)).status == 200
    # The URL alone may change now: the stored subscription is "external".
    other = "https://calendar.example.com/other.ics"
    assert (await call("PATCH", f"/group/{prokey}", {"subscription_cal_url": other})).status == 200
    assert (await call("PATCH", f"/group/{prokey}", {"subscription": "external"})).status == 200
    assert server.groups[prokey]["subscription_cal_url"] == other
    # ... but it cannot be removed while the subscription stays external.
    reply = await call("PATCH", f"/group/{prokey}", {"subscription_cal_url": None})
    assert reply.status == 400


async def test_update_leaving_external_drops_the_stored_url(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team", subscription="external", subscription_cal_url=CAL_URL)
    assert (await call("PATCH", f"/group/{prokey}", {"subscription": "no"})).status == 200
    assert server.groups[prokey]["subscription"] == "no"
    assert server.groups[prokey]["subscription_cal_url"] is None


async def test_subscription_cannot_change_while_events_are_linked(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team", events=1)
    body = {"subscription": "external", "subscription_cal_url": CAL_URL}
    reply = await call("PATCH", f"/group/{prokey}", body)
    assert reply.status == 400
    assert "events linked" in reply.json["message"]
    assert server.groups[prokey]["subscription"] == "no"
    assert server.updates == 0
    # Naming the same subscription is no change, and other fields stay editable.
    body = {"subscription": "no", "name": "Renamed"}
    assert (await call("PATCH", f"/group/{prokey}", body)).status == 200


async def test_subscription_can_change_once_the_events_are_gone(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    assert (await call("PATCH", f"/group/{prokey}", {"subscription": "children"})).status == 200
    server.link_event(prokey)
    assert (await call("PATCH", f"/group/{prokey}", {"subscription": "no"})).status == 400


async def test_a_group_drafted_in_the_app_cannot_be_published(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    server.set_drafted_in_app(prokey)
    assert server.groups[prokey]["status"] == "draft"
    reply = await call("PATCH", f"/group/{prokey}", {"status": "published"})
    assert reply.status == 403
    assert "draft" in reply.json["message"]
    assert server.groups[prokey]["status"] == "draft"
    assert (await call("PATCH", f"/group/{prokey}", {"status": "draft", "name": "B"})).status == 200


async def test_a_group_drafted_through_the_api_can_be_published(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    assert (await call("PATCH", f"/group/{prokey}", {"status": "draft"})).status == 200
    assert (await call("PATCH", f"/group/{prokey}", {"status": "published"})).status == 200
    assert server.groups[prokey]["status"] == "published"


async def test_every_fifth_update_costs_one_credit(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(credits=3) as fake:
        call = caller(session, fake)
        prokey = fake.add_group("Team")
        seen = []
        for n in range(10):
            assert (await call("PATCH", f"/group/{prokey}", {"name": f"n{n}"})).status == 200
            seen.append(fake.credits)
    assert seen == [3, 3, 3, 3, 2, 2, 2, 2, 2, 1]
    assert fake.updates == 10


async def test_refused_updates_cost_no_credit(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(credits=1) as fake:
        call = caller(session, fake)
        prokey = fake.add_group("Team")
        for _ in range(6):
            assert (await call("PATCH", f"/group/{prokey}", {"name": ""})).status == 400
    assert (fake.credits, fake.updates) == (1, 0)


async def test_the_fifth_update_is_refused_without_credits(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(credits=0) as fake:
        call = caller(session, fake)
        prokey = fake.add_group("Team")
        for n in range(4):
            assert (await call("PATCH", f"/group/{prokey}", {"name": f"n{n}"})).status == 200
        reply = await call("PATCH", f"/group/{prokey}", {"name": "fifth"})
        assert reply.status == 402
        assert "credit" in reply.json["message"]
        assert fake.groups[prokey]["name"] == "n3"
        assert fake.updates == 4
        fake.credits = 1
        assert (await call("PATCH", f"/group/{prokey}", {"name": "fifth"})).status == 200
    assert (fake.credits, fake.updates) == (0, 5)


# Delete ----------------------------------------------------------------------------


async def test_delete_removes_the_group_and_its_linked_events(
    call: Call, server: FakeGroupsServer
) -> None:
    doomed = server.add_group("Doomed", events=2)
    kept = server.add_group("Kept")
    kept_event = server.link_event(kept)
    reply = await call("DELETE", f"/group/{doomed}")
    assert (reply.status, reply.json) == (200, {"success": "Deleted"})
    assert list(server.groups) == [kept]
    assert dict(server.events) == {kept_event: kept}
    assert (await call("GET", f"/group/{doomed}")).status == 404
    assert (await call("DELETE", f"/group/{doomed}")).status == 404


# Seeding and inspection -------------------------------------------------------------


async def test_keys_are_uuid4_and_replay_with_the_seed() -> None:
    first, second = FakeGroupsServer(seed=3), FakeGroupsServer(seed=3)
    keys = [first.add_group("A"), first.link_event(first.add_group("B"))]
    assert keys == [second.add_group("A"), second.link_event(second.add_group("B"))]
    assert all(uuid.UUID(key).version == 4 for key in keys)
    assert FakeGroupsServer(seed=4).add_group("A") != keys[0]


def test_seeding_refuses_unknown_groups_and_reused_keys() -> None:
    fake = FakeGroupsServer()
    prokey = fake.add_group("A")
    with pytest.raises(KeyError):
        fake.link_event("nope")
    with pytest.raises(KeyError):
        fake.set_drafted_in_app("nope")
    with pytest.raises(ValueError, match="exists"):
        fake.add_group("B", prokey=prokey)


def test_groups_is_a_read_only_copy() -> None:
    fake = FakeGroupsServer()
    prokey = fake.add_group("A")
    view = fake.groups
    with pytest.raises(TypeError):
        view[prokey] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        view[prokey]["name"] = "B"  # type: ignore[index]
    fake.link_event(prokey)
    assert view[prokey]["events"] == ()


async def test_requests_are_recorded_as_received(call: Call, server: FakeGroupsServer) -> None:
    prokey = server.add_group("Team")
    await call("PATCH", f"/group/{prokey}?x=1", {"name": "New"})
    await call("GET", "/group/all")
    first, second = server.requests
    assert (first.method, first.path, first.body) == (
        "PATCH",
        f"/v1/group/{prokey}",
        {"name": "New"},
    )
    assert first.query == {"x": "1"}
    assert first.headers["Authorization"] == "test-key"
    assert first.raw_body == b'{"name": "New"}'
    assert first.fault is None
    assert (second.method, second.path, second.body, second.raw_body) == (
        "GET",
        "/v1/group/all",
        None,
        b"",
    )
    server.reset_stats()
    assert server.requests == []
    assert server.peak_in_flight == 0


async def test_record_false_records_nothing(session: aiohttp.ClientSession) -> None:
    async with FakeGroupsServer(record=False) as fake:
        await caller(session, fake)("GET", "/group/all")
    assert fake.requests == []
    assert fake.peak_in_flight == 1


async def test_peak_in_flight_counts_concurrent_requests(
    call: Call, server: FakeGroupsServer
) -> None:
    server.faults = Faults(latency=0.05)
    replies = await asyncio.gather(*(call("GET", "/group/all") for _ in range(4)))
    assert [r.status for r in replies] == [200] * 4
    assert server.peak_in_flight == 4
    assert server.in_flight == 0


# Faults: one-shot injections -----------------------------------------------------------


async def test_injected_5xx_sends_an_html_page_and_does_not_act(
    call: Call, server: FakeGroupsServer
) -> None:
    injection = server.inject(status=502, method="POST")
    assert (await call("GET", "/group/all")).status == 200  # not a POST: untouched
    assert not injection.fired
    reply = await call("POST", "/group", {"name": "Team"})
    assert reply.status == 502
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<html>")
    assert "502 Bad Gateway" in reply.text
    assert "Retry-After" not in reply.headers
    assert not server.groups
    assert injection.fired
    assert server.pending_injections == []
    assert server.requests[-1].fault == "502"
    assert (await call("POST", "/group", {"name": "Team"})).status == 201


async def test_injected_status_carries_retry_after_headers_and_body(
    call: Call, server: FakeGroupsServer
) -> None:
    server.inject(
        status=429, retry_after=0.5, headers={"X-Request-Id": "req-1"}, body={"message": "Slow"}
    )
    server.inject(status=503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    reply = await call("GET", "/group/all")
    assert (reply.status, reply.json) == (429, {"message": "Slow"})
    assert reply.headers["Retry-After"] == "0.5"
    assert reply.headers["X-Request-Id"] == "req-1"
    reply = await call("GET", "/group/all")
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"


async def test_injections_fire_in_order_for_matching_requests(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    server.inject(status=500, times=2, path=f"/group/{prokey}")
    server.inject(status=503)
    assert (await call("GET", "/group/all")).status == 503  # the first one targets the key
    assert [(await call("GET", f"/group/{prokey}")).status for _ in range(3)] == [500, 500, 200]
    assert server.pending_injections == []


async def test_injections_come_before_random_faults(call: Call, server: FakeGroupsServer) -> None:
    server.faults = Faults(error_rate=1.0, error_statuses=[500])
    server.inject(status=504, times=2)
    statuses = [(await call("GET", "/group/all")).status for _ in range(3)]
    assert statuses == [504, 504, 500]


async def test_injected_reset_drops_the_connection_before_acting(
    server: FakeGroupsServer, caplog: pytest.LogCaptureFixture
) -> None:
    prokey = server.add_group("Team")
    server.inject(reset=True, method="DELETE")
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionResetError):
        await raw_request(server, "DELETE", f"/group/{prokey}")
    assert list(server.groups) == [prokey]
    assert server.requests[-1].fault == "reset"
    assert status_of(await raw_request(server, "DELETE", f"/group/{prokey}")) == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("method", ["DELETE", "POST"])
async def test_lost_reply_acts_then_closes_without_answering(
    server: FakeGroupsServer, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    prokey = server.add_group("Team")
    server.inject(lost_reply=True)
    path, body = (f"/group/{prokey}", None) if method == "DELETE" else ("/group", {"name": "B"})
    with caplog.at_level(logging.DEBUG):
        assert await raw_request(server, method, path, body) == b""
    if method == "DELETE":
        assert not server.groups
        # The retry of a delete whose reply was lost finds the group gone.
        assert status_of(await raw_request(server, "DELETE", path)) == 404
    else:
        assert sorted(g["name"] for g in server.groups.values()) == ["B", "Team"]
    assert server.requests[0].fault == "lost_reply"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_aiohttp_sees_a_lost_reply_as_a_disconnect(server: FakeGroupsServer) -> None:
    server.inject(lost_reply=True, method="POST")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await http.post(
                f"{server.url}/group", json={"name": "A"}, headers={"Authorization": "test-key"}
            )
    assert len(server.groups) == 1


async def test_malformed_reply_acts_and_cuts_the_json_short(
    call: Call, server: FakeGroupsServer
) -> None:
    prokey = server.add_group("Team")
    server.inject(malformed=True, method="PATCH")
    server.inject(malformed=True, method="GET")
    reply = await call("PATCH", f"/group/{prokey}", {"name": "New"})
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json is None
    assert reply.text
    assert '{"success": "Updated"}'.startswith(reply.text)
    assert server.groups[prokey]["name"] == "New"
    reply = await call("GET", f"/group/{prokey}")
    assert (reply.status, reply.json) == (200, None)
    assert server.requests[-1].fault == "malformed"


async def test_injected_delay_slows_one_request(call: Call, server: FakeGroupsServer) -> None:
    loop = asyncio.get_running_loop()
    server.inject(delay=0.1)
    started = loop.time()
    assert (await call("GET", "/group/all")).status == 200
    assert loop.time() - started >= 0.1
    assert server.requests[-1].fault == "delay"
    await call("GET", "/group/all")
    assert server.requests[-1].fault is None  # used up: the next one is not slowed


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"status": 503, "reset": True}, ValueError),
        ({"lost_reply": True, "malformed": True}, ValueError),
        ({"status": 99}, ValueError),
        ({"status": "503"}, TypeError),
        ({"reset": True, "times": 0}, ValueError),
        ({"delay": -1.0}, ValueError),
        ({"reset": True, "path": "group/all"}, ValueError),
    ],
)
def test_inject_refuses_unclear_requests(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        FakeGroupsServer().inject(**kwargs)


# Faults: random --------------------------------------------------------------------


async def test_error_rate_answers_listed_5xx_statuses_with_html(
    call: Call, server: FakeGroupsServer
) -> None:
    server.faults = Faults(error_rate=1.0, error_statuses=(502, 503))
    replies = [await call("POST", "/group", {"name": "A"}) for _ in range(12)]
    assert {r.status for r in replies} == {502, 503}
    assert all(r.text.startswith("<html>") for r in replies)
    assert not server.groups


async def test_random_reset_and_lost_reply_differ_in_whether_the_server_acted(
    server: FakeGroupsServer,
) -> None:
    server.faults = Faults(reset_rate=1.0)
    with pytest.raises(ConnectionResetError):
        await raw_request(server, "POST", "/group", {"name": "A"})
    assert not server.groups
    server.faults = Faults(lost_reply_rate=1.0)
    assert await raw_request(server, "POST", "/group", {"name": "A"}) == b""
    assert len(server.groups) == 1


async def test_random_malformed_answers_broken_json(call: Call, server: FakeGroupsServer) -> None:
    server.faults = Faults(malformed_rate=1.0)
    reply = await call("GET", "/group/all")
    assert reply.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.text)


async def test_rate_limit_answers_429_with_retry_after_over_the_burst(
    call: Call, server: FakeGroupsServer
) -> None:
    server.faults = Faults(rate_limit=5.0, burst=2, retry_after=0.5)
    statuses = [(await call("GET", "/group/all")).status for _ in range(2)]
    limited = await call("GET", "/group/all")
    assert statuses == [200, 200]
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "0.5"
    assert limited.json == {"message": "Too many requests"}
    assert server.requests[-1].fault == "429"
    await asyncio.sleep(0.21)  # 5 per second: one token back after 0.2 s
    assert (await call("GET", "/group/all")).status == 200


async def test_rate_limit_burst_defaults_to_one_second_of_requests(
    call: Call, server: FakeGroupsServer
) -> None:
    server.faults = Faults(rate_limit=3.0, retry_after=2)
    statuses = [(await call("GET", "/group/all")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert server.requests[-1].fault == "429"


async def test_latency_and_jitter_delay_every_answer(call: Call, server: FakeGroupsServer) -> None:
    loop = asyncio.get_running_loop()
    server.faults = Faults(latency=0.04, jitter=0.02)
    started = loop.time()
    await call("GET", "/group/all")
    await call("GET", "/group/all")
    assert loop.time() - started >= 0.08
    assert [r.fault for r in server.requests] == ["delay", "delay"]


async def fault_sequence(seed: int, count: int = 40) -> list[str | None]:
    faults = Faults(error_rate=0.2, reset_rate=0.2, lost_reply_rate=0.2, malformed_rate=0.2)
    async with FakeGroupsServer(seed=seed, faults=faults) as fake:
        for _ in range(count):
            with contextlib.suppress(ConnectionResetError):
                await raw_request(fake, "GET", "/group/all")
        return [r.fault for r in fake.requests]


async def test_the_same_seed_replays_the_same_fault_sequence() -> None:
    first = await fault_sequence(seed=11)
    assert first == await fault_sequence(seed=11)
    assert first != await fault_sequence(seed=12)
    assert {"500", "502", "503"} & set(first)
    assert {"reset", "lost_reply", "malformed", None} <= set(first)


async def test_faults_can_be_replaced_while_running(call: Call, server: FakeGroupsServer) -> None:
    server.faults = Faults(error_rate=1.0, error_statuses=(500,))
    assert (await call("GET", "/group/all")).status == 500
    server.faults = Faults()
    assert (await call("GET", "/group/all")).status == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": -0.1},
        {"jitter": float("nan")},
        {"error_rate": 1.5},
        {"reset_rate": -0.1},
        {"error_rate": 0.6, "lost_reply_rate": 0.6},
        {"error_statuses": ()},
        {"error_statuses": (404,)},
        {"rate_limit": 0},
        {"burst": 0.5},
        {"retry_after": -1},
        {"malformed_rate": "0.1"},
    ],
)
def test_faults_refuse_invalid_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Faults(**kwargs)


def test_faults_are_frozen_and_keyword_only() -> None:
    faults = Faults(error_statuses=[500])
    assert faults.error_statuses == (500,)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        faults.latency = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        Faults(0.1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        FakeGroupsServer().faults = {"latency": 1.0}  # type: ignore[assignment]


# TLS and lifecycle -------------------------------------------------------------------


async def test_tls_server_is_trusted_through_its_ssl_context() -> None:
    async with FakeGroupsServer(tls=True) as fake, aiohttp.ClientSession() as http:
        assert fake.url.startswith("https://127.0.0.1:")
        headers = {"Authorization": fake.api_key}
        async with http.get(f"{fake.url}/group/all", ssl=fake.ssl_context(), headers=headers) as r:
            assert r.status == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{fake.url}/group/all", headers=headers)
        assert isinstance(fake.ssl_context(), ssl.SSLContext)


def test_ssl_context_needs_tls() -> None:
    with pytest.raises(RuntimeError, match="tls=True"):
        FakeGroupsServer().ssl_context()


async def test_lifecycle_is_explicit() -> None:
    fake = FakeGroupsServer()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = fake.url
    await fake.start()
    try:
        assert fake.url == f"http://127.0.0.1:{fake.port}/v1"
        with pytest.raises(RuntimeError, match="already running"):
            await fake.start()
    finally:
        await fake.close()
    await fake.close()
    with pytest.raises(ConnectionRefusedError):
        await raw_request(fake, "GET", "/group/all")


async def test_close_does_not_wait_for_a_long_injected_delay() -> None:
    fake = FakeGroupsServer()
    await fake.start()
    fake.inject(delay=30.0)
    pending = asyncio.ensure_future(raw_request(fake, "GET", "/group/all"))
    while fake.in_flight == 0:
        await asyncio.sleep(0.005)
    await fake.close()
    # Cut off, not answered: waited out, the delay would have ended in a full reply.
    assert await pending == b""
    assert fake.in_flight == 0


def test_constructor_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="shape"):
        FakeGroupsServer(shape="tuple")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="api_key"):
        FakeGroupsServer("")

"""A FastAPI app built the documented way, end to end over real sockets: models as
return and body annotations, errors mapped by `add_exception_handlers`, per-call options.

Driven twice over: synchronously by FastAPI's `TestClient` against the fake on a thread
of its own (`fake_groups_server_in_thread`), and asynchronously by httpx's
`ASGITransport` against the fake on the test's loop (`fake_groups_server`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import attrs
import httpx
import pytest
from conftest import API_KEY, KEY, NO_WAIT
from fastapi import Body, Depends, FastAPI
from fastapi.testclient import TestClient

from asyncgroups import Group, GroupPatch, GroupsClient, GroupSummary, NewGroup
from asyncgroups.contrib.jsonable import to_jsonable
from asyncgroups.contrib.starlette import add_exception_handlers, groups_client, groups_lifespan
from asyncgroups.testing import FakeGroupsServer

Groups = Annotated[GroupsClient, Depends(groups_client)]

#: A client's own timeout in these apps: long enough for the fake's slow replies, short
#: enough that a test that hangs fails in seconds, not minutes.
TIMEOUT = 2.0
#: Slower than the quick endpoint's timeout, well within the client's own.
SLOW = 0.3
#: Retries without waiting; a 429 asking for more than a second is passed on at once.
RETRY = attrs.evolve(NO_WAIT, max_retry_after=1.0)


def make_app(server: FakeGroupsServer, *, api_key: str | None = None) -> FastAPI:
    """The app a user writes: one client, models in and out, errors mapped."""

    def client() -> GroupsClient:
        return GroupsClient(api_key or server.api_key, base_url=server.url, timeout=TIMEOUT,
                            retry=RETRY, rate_limit=None)  # fmt: skip

    app = FastAPI(lifespan=groups_lifespan(client))
    add_exception_handlers(app)

    @app.get("/groups")
    async def list_groups(client: Groups) -> list[GroupSummary]:
        return await client.groups.list()

    @app.get("/groups/{prokey}")
    async def read_group(prokey: str, client: Groups) -> Group:
        return await client.groups.get(prokey)

    @app.get("/quick/{prokey}")
    async def read_group_quickly(prokey: str, client: Groups) -> Group:
        return await client.with_options(timeout=0.1, retry=None).groups.get(prokey)

    @app.post("/groups", status_code=201)
    async def create_group(new: Annotated[NewGroup, Body()], client: Groups) -> dict[str, str]:
        return {"prokey": await client.groups.create(new)}

    @app.patch("/groups/{prokey}")
    async def update_group(
        prokey: str, patch: Annotated[GroupPatch, Body()], client: Groups
    ) -> dict[str, bool]:
        return {"sent": await client.groups.update(prokey, patch)}

    return app


@pytest.fixture
def fake(fake_groups_server_in_thread: FakeGroupsServer) -> FakeGroupsServer:
    return fake_groups_server_in_thread


@pytest.fixture
def http(fake: FakeGroupsServer) -> Iterator[TestClient]:
    with TestClient(make_app(fake)) as client:  # `with`: runs the app's lifespan
        yield client


@pytest.fixture
async def ahttp(fake_groups_server: FakeGroupsServer) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(fake_groups_server)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


def _writes(server: FakeGroupsServer) -> list[str]:
    return [r.method for r in server.requests if r.method != "GET"]


# Models in and out ---------------------------------------------------------------


def test_fastapi_group_endpoint_answers_every_field(
    fake: FakeGroupsServer, http: TestClient
) -> None:
    key = fake.add_group("Team", events=2, internal_note="ours")

    answer = http.get(f"/groups/{key}")

    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == [f.name for f in attrs.fields(Group)]
    assert (body["prokey"], body["name"], body["internal_note"]) == (key, "Team", "ours")
    assert body["event_prokeys"] == list(fake.groups[key]["events"])


async def test_fastapi_group_endpoint_writes_what_to_jsonable_writes(
    fake_groups_server: FakeGroupsServer, ahttp: httpx.AsyncClient
) -> None:
    key = fake_groups_server.add_group("Team", events=1, layout="dark")
    async with GroupsClient(fake_groups_server.api_key, base_url=fake_groups_server.url) as c:
        group = await c.groups.get(key)

    answer = await ahttp.get(f"/groups/{key}")
    listing = await ahttp.get("/groups")

    assert answer.json() == to_jsonable(group)
    assert listing.json() == [{"prokey": key, "name": "Team", "extra": {}}]


def test_fastapi_openapi_has_the_models_schemas(http: TestClient) -> None:
    openapi = http.get("/openapi.json").json()

    schemas = openapi["components"]["schemas"]
    assert list(schemas["Group"]["properties"]) == [f.name for f in attrs.fields(Group)]
    assert schemas["NewGroup"]["required"] == ["name"]
    read = openapi["paths"]["/groups/{prokey}"]["get"]["responses"]["200"]
    assert read["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Group"}
    create = openapi["paths"]["/groups"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/NewGroup"}


def test_fastapi_new_group_body_creates_a_group(fake: FakeGroupsServer, http: TestClient) -> None:
    answer = http.post("/groups", json={"name": "Team", "cta": True})

    assert answer.status_code == 201
    key = answer.json()["prokey"]
    assert fake.groups[key]["name"] == "Team"
    assert fake.groups[key]["cta"] is True


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"name": "  "}, ["body", "name"]),
        ({"name": "Team", "subscription": "external"}, ["body", "subscription_cal_url"]),
        ({"name": "Team", "nmae": "typo"}, ["body", "nmae"]),
    ],
)
def test_fastapi_new_group_body_refused_is_a_422_naming_the_field(
    fake: FakeGroupsServer, http: TestClient, body: dict[str, str], loc: list[str]
) -> None:
    answer = http.post("/groups", json=body)

    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == loc
    assert _writes(fake) == []


@pytest.mark.parametrize(
    ("method", "body", "loc"),
    [
        ("POST", rb'{"name": "Team \ud83d"}', ["body", "name"]),
        ("PATCH", rb'{"landingpage": "\udfff"}', ["body", "landingpage"]),
    ],
    ids=["create", "patch"],
)
def test_fastapi_body_with_a_lone_surrogate_is_a_422_naming_the_field(
    fake: FakeGroupsServer, http: TestClient, method: str, body: bytes, loc: list[str]
) -> None:
    """JSON may escape half an emoji (`\\ud83d`); the model refuses it (it has no UTF-8
    form), and the 422 that says so must itself be writable as UTF-8."""
    key = fake.add_group("Team")
    path = "/groups" if method == "POST" else f"/groups/{key}"
    json_type = {"Content-Type": "application/json"}
    answer = http.request(method, path, content=body, headers=json_type)

    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == loc
    assert "lone surrogate" in error["msg"]
    assert _writes(fake) == []


def test_fastapi_patch_body_sends_only_what_it_carries(
    fake: FakeGroupsServer, http: TestClient
) -> None:
    key = fake.add_group("Team", layout="dark")

    answer = http.patch(f"/groups/{key}", json={"name": "Renamed", "layout": None})

    assert answer.json() == {"sent": True}
    [patch] = [r for r in fake.requests if r.method == "PATCH"]
    assert patch.body == {"name": "Renamed", "layout": None}


# Errors --------------------------------------------------------------------------


def test_fastapi_missing_group_is_404_and_malformed_key_422(http: TestClient) -> None:
    missing = http.get(f"/groups/{KEY}")
    malformed = http.get("/groups/not-a-key")

    assert (missing.status_code, missing.json()) == (404, {"detail": "no group with this key"})
    assert malformed.status_code == 422
    assert "is not a prokey" in malformed.json()["detail"]


def test_fastapi_locked_subscription_is_409(fake: FakeGroupsServer, http: TestClient) -> None:
    key = fake.add_group("Team", events=1)
    body = {"subscription": "external", "subscription_cal_url": "https://e.com/c.ics"}

    answer = http.patch(f"/groups/{key}", json=body)

    assert answer.status_code == 409
    assert "1 event(s) are linked" in answer.json()["detail"]
    assert _writes(fake) == []


async def test_fastapi_upstream_429_is_503_with_its_retry_after(
    fake_groups_server: FakeGroupsServer, ahttp: httpx.AsyncClient
) -> None:
    key = fake_groups_server.add_group("Team")
    fake_groups_server.inject(status=429, retry_after=7)

    answer = await ahttp.get(f"/groups/{key}")

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "7"
    assert answer.json() == {
        "detail": "the groups API is rate limiting this service; try again in 7s"
    }


@pytest.mark.parametrize(
    ("retry_after", "header"),
    [("99999999999999999999", "3600"), ("Fri, 31 Dec 9999 23:59:59 GMT", "3600")],
)
async def test_fastapi_upstream_429_with_an_absurd_retry_after_is_told_at_most_an_hour(
    fake_groups_server: FakeGroupsServer, ahttp: httpx.AsyncClient, retry_after: str, header: str
) -> None:
    key = fake_groups_server.add_group("Team")
    fake_groups_server.inject(status=429, retry_after=retry_after)

    answer = await ahttp.get(f"/groups/{key}")

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == header


@pytest.mark.parametrize(("status", "expected"), [(500, 502), (401, 502), (403, 502)])
async def test_fastapi_upstream_failure_is_502_without_the_key(
    fake_groups_server: FakeGroupsServer,
    ahttp: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    expected: int,
) -> None:
    key = fake_groups_server.add_group("Team")
    echo = {"message": f"Authorization {fake_groups_server.api_key} is not valid here"}
    fake_groups_server.inject(status=status, body=echo, times=NO_WAIT.max_attempts)

    with caplog.at_level(logging.WARNING):
        answer = await ahttp.get(f"/groups/{key}")

    assert answer.status_code == expected
    assert answer.json() == {"detail": f"the groups API failed (it answered {status})"}
    assert fake_groups_server.api_key not in answer.text
    assert f"answered {expected}" in caplog.text
    assert fake_groups_server.api_key not in caplog.text


def test_fastapi_refused_key_echoed_upstream_never_reaches_the_caller(
    fake: FakeGroupsServer,
) -> None:
    key = fake.add_group("Team")
    fake.inject(status=401, body={"message": f"unknown key {API_KEY}"})
    with TestClient(make_app(fake, api_key=API_KEY)) as http:
        answer = http.get(f"/groups/{key}")

    assert answer.status_code == 502
    assert API_KEY not in answer.text


# Per-call options ------------------------------------------------------------------


def test_fastapi_quick_endpoint_times_out_while_the_client_keeps_its_timeout(
    fake: FakeGroupsServer, http: TestClient
) -> None:
    key = fake.add_group("Team")
    fake.inject(delay=SLOW, times=2, method="GET")

    quick = http.get(f"/quick/{key}")
    patient = http.get(f"/groups/{key}")

    assert quick.status_code == 504
    assert quick.json() == {"detail": "the groups API did not answer in time; try again later"}
    assert patient.status_code == 200
    assert len(fake.requests) == 2  # the quick call's retry=None: one attempt


# Setting the app up wrong ------------------------------------------------------------


def test_fastapi_test_client_without_with_says_to_use_it_as_a_context_manager(
    fake: FakeGroupsServer,
) -> None:
    http = TestClient(make_app(fake))  # no `with`: the lifespan never runs

    with pytest.raises(RuntimeError) as caught:
        http.get(f"/groups/{KEY}")

    assert "with TestClient(app) as client:" in str(caught.value)
    assert fake.requests == []


@pytest.mark.parametrize("made", [True, False])
def test_fastapi_lifespan_given_a_client_instead_of_its_maker_says_so_at_once(
    fake: FakeGroupsServer, made: bool
) -> None:
    client = GroupsClient(fake.api_key, base_url=fake.url) if made else "http://example.com"

    with pytest.raises(TypeError) as caught:
        groups_lifespan(client)  # type: ignore[arg-type]

    assert "lambda: GroupsClient(...)" in str(caught.value)
    assert f"not {type(client).__name__}" in str(caught.value)

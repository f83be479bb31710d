"""The client end to end against the fake server: every rule that crosses the network."""

from __future__ import annotations

import asyncio
import logging
import warnings

import aiohttp
import pytest
from conftest import NO_WAIT
from conftest import local_client as _client

from asyncgroups import (
    AuthenticationError,
    BadRequestError,
    GroupPatch,
    GroupsClient,
    GroupStatus,
    NewGroup,
    NotFoundError,
    PermissionDeniedError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    Subscription,
    SubscriptionLockedError,
    TransportError,
    UnexpectedResponseError,
)
from asyncgroups.testing import FakeGroupsServer


@pytest.fixture(params=["list", "object"])
async def server(request: pytest.FixtureRequest) -> object:
    async with FakeGroupsServer(shape=request.param) as fake:
        yield fake


async def test_crud_round_trip_in_both_reply_shapes(server: FakeGroupsServer) -> None:
    async with _client(server) as client:
        key = await client.groups.create(
            NewGroup(
                "Team",
                internal_note="n",
                subscription=Subscription.EXTERNAL,
                subscription_cal_url="https://example.com/a.ics",
                cta=True,
            )
        )
        group = await client.groups.get(key)
        assert group.prokey == key
        assert group.name == "Team"
        assert group.subscription is Subscription.EXTERNAL
        assert group.subscription_cal_url == "https://example.com/a.ics"
        assert group.status is GroupStatus.PUBLISHED
        assert group.date_created is not None
        assert group.date_created.tzinfo is not None

        assert await client.groups.update(key, GroupPatch(name="Team 2", internal_note=None))
        group = await client.groups.get(key)
        assert (group.name, group.internal_note) == ("Team 2", None)

        summaries = await client.groups.list()
        assert [s.prokey for s in summaries] == [key]
        assert (await client.groups.latest()).prokey == key

        await client.groups.delete(key)
        with pytest.raises(NotFoundError) as info:
            await client.groups.get(key)
        assert "No entry found" in str(info.value)
        assert str(info.value).startswith(f"GET /group/{key}: 404")


async def test_landingpage_and_overview_round_trip_in_both_reply_shapes(
    server: FakeGroupsServer,
) -> None:
    async with _client(server) as client:
        new = NewGroup("Team", landingpage="lp-1", public_event_overview=True)
        key = await client.groups.create(new)
        group = await client.groups.get(key)
        assert (group.landingpage, group.public_event_overview) == ("lp-1", True)
        assert group.extra == {}

        same = GroupPatch(landingpage="lp-1", public_event_overview=True)
        assert not await client.groups.update(key, same, skip_unchanged=True)
        cleared = GroupPatch(landingpage=None, public_event_overview=False)
        assert await client.groups.update(key, cleared)
        group = await client.groups.get(key)
        assert (group.landingpage, group.public_event_overview) == (None, False)
        assert (await client.groups.latest()).landingpage is None
        assert [s.prokey for s in await client.groups.list()] == [key]
    assert server.groups[key]["landingpage"] is None
    assert [r.body for r in server.requests if r.method == "PATCH"] == [
        {"landingpage": None, "public_event_overview": False}
    ]


async def test_status_and_subscription_read_as_enums_unless_unknown(
    server: FakeGroupsServer,
) -> None:
    known = server.add_group("Known", status="draft", subscription="children")
    weird = server.add_group("Weird", status="weird", subscription="family")
    async with _client(server) as client:
        group = await client.groups.get(known)
        assert isinstance(group.status, GroupStatus)
        assert (group.status, group.subscription) == (GroupStatus.DRAFT, Subscription.CHILDREN)
        assert isinstance(group.subscription, Subscription)
        group = await client.groups.get(weird)
    assert (group.status, group.subscription) == ("weird", "family")
    assert not isinstance(group.status, GroupStatus)
    assert not isinstance(group.subscription, Subscription)


async def test_both_shapes_decode_to_the_same_group() -> None:
    groups = []
    for shape in ("list", "object"):
        async with FakeGroupsServer(shape=shape) as fake:
            key = fake.add_group(name="Same", prokey="31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa")
            fake.link_event(key)
            async with _client(fake) as client:
                groups.append(await client.groups.get(key))
    a, b = groups
    assert (a.name, a.status, a.subscription, len(a.event_prokeys)) == (
        b.name,
        b.status,
        b.subscription,
        len(b.event_prokeys),
    )
    assert len(a.event_prokeys) == 1


async def test_get_is_retried_after_5xx_html_and_resets(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    server.inject(status=502, method="GET")
    server.inject(reset=True, method="GET")
    async with _client(server) as client:
        assert (await client.groups.get(key)).name == "g"
        assert client.stats.requests == 3
        assert client.stats.retries == 2
    assert [r.fault for r in server.requests] == ["502", "reset", None]


async def test_get_gives_up_with_server_error_after_max_attempts(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    server.inject(status=503, method="GET", times=3)
    async with _client(server) as client:
        with pytest.raises(ServerError) as info:
            await client.groups.get(key)
    assert info.value.status == 503
    assert "HTML" in info.value.message
    assert len(server.requests) == 3


async def test_retry_none_sends_exactly_one_attempt_even_on_a_reused_connection(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g")
    async with _client(server, retry=None) as client:
        await client.groups.get(key)  # warm the pool: the next GET reuses the connection
        server.inject(reset=True, method="GET")
        with pytest.raises(TransportError):
            await client.groups.get(key)
    assert len(server.requests) == 2
    assert client.stats.requests == 2


async def test_create_is_not_retried_after_a_5xx(server: FakeGroupsServer) -> None:
    server.inject(status=503, method="POST")
    async with _client(server) as client:
        with pytest.raises(ServerError):
            await client.groups.create(NewGroup("Once"))
    assert len([r for r in server.requests if r.method == "POST"]) == 1


async def test_create_is_not_retried_after_a_lost_reply(server: FakeGroupsServer) -> None:
    server.inject(lost_reply=True, method="POST")
    async with _client(server) as client:
        with pytest.raises(TransportError):
            await client.groups.create(NewGroup("Once"))
    assert [g["name"] for g in server.groups.values()] == ["Once"]  # no duplicate


async def test_create_is_retried_after_a_429(server: FakeGroupsServer) -> None:
    server.inject(status=429, method="POST", retry_after=0)
    async with _client(server) as client:
        key = await client.groups.create(NewGroup("Once"))
    assert list(server.groups) == [key]


async def test_patch_is_not_retried_after_a_reset_that_may_have_acted(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g")
    server.inject(lost_reply=True, method="PATCH")
    async with _client(server) as client:
        with pytest.raises(TransportError):
            await client.groups.update(key, GroupPatch(name="h"))
    assert server.updates == 1
    assert len([r for r in server.requests if r.method == "PATCH"]) == 1


async def test_slow_reply_raises_request_timeout_per_attempt(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    server.inject(delay=1.0, method="GET", times=2)
    retry = RetryPolicy(max_attempts=2, backoff_base=0)
    async with _client(server, timeout=0.05, retry=retry) as c:
        with pytest.raises(RequestTimeout) as info:
            await c.groups.get(key)
    assert "0.05s" in str(info.value)
    assert c.stats.requests == 2


async def test_waiting_for_a_slot_does_not_count_against_the_timeout(
    server: FakeGroupsServer,
) -> None:
    keys = [server.add_group(name=f"g{i}") for i in range(4)]
    server.inject(delay=0.15, method="GET", times=4)
    async with _client(server, timeout=0.4, max_connections=1) as client:
        # four 0.15 s requests through one slot: the last waits 0.45 s, over the timeout
        groups = await asyncio.gather(*(client.groups.get(k) for k in keys))
    assert [g.prokey for g in groups] == keys
    assert client.stats.retries == 0


async def test_wrong_key_is_an_authentication_error_that_hides_the_key(
    server: FakeGroupsServer,
) -> None:
    secret = "wrong-secret-key-1234"
    async with GroupsClient(secret, base_url=server.url, retry=NO_WAIT) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.groups.list()
    assert secret not in str(info.value)
    assert secret not in repr(info.value)
    assert secret not in repr(client)
    assert "the API key may be wrong or expired" in str(info.value)


async def test_write_refused_with_403_says_the_key_may_be_read_only(
    server: FakeGroupsServer,
) -> None:
    server.inject(status=403, method="POST", body={"message": "Forbidden"})
    async with _client(server) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.groups.create(NewGroup("Team"))
    assert info.value.message == "Forbidden"  # what the server said, kept as it was
    assert "may be Read-only" in str(info.value)
    assert "create a Read & Write key" in str(info.value)
    assert server.api_key not in str(info.value)


async def test_debug_logs_show_each_attempt_but_never_the_key(
    server: FakeGroupsServer, caplog: pytest.LogCaptureFixture
) -> None:
    key = server.add_group(name="g")
    server.inject(status=500, method="GET")
    caplog.set_level(logging.DEBUG, logger="asyncgroups")
    async with _client(server) as client:
        await client.groups.get(key)
    lines = [r.getMessage() for r in caplog.records if r.name == "asyncgroups"]
    assert any(f"GET /group/{key} -> 500 (attempt 1" in line for line in lines)
    assert any(f"GET /group/{key} -> 200 (attempt 2" in line for line in lines)
    assert all(server.api_key not in line for line in lines)


async def test_subscription_change_with_events_linked_sends_no_patch(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g", events=2)
    async with _client(server) as client:
        with pytest.raises(SubscriptionLockedError) as info:
            await client.groups.update(
                key,
                GroupPatch(
                    subscription=Subscription.EXTERNAL,
                    subscription_cal_url="https://example.com/x.ics",
                ),
            )
    assert info.value.linked_events == 2
    assert [r.method for r in server.requests] == ["GET"]
    assert server.updates == 0


async def test_subscription_change_without_events_is_sent(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    async with _client(server) as client:
        patch = GroupPatch(subscription="external", subscription_cal_url="https://e.com/x.ics")
        assert await client.groups.update(key, patch)
        assert (await client.groups.get(key)).subscription is Subscription.EXTERNAL


async def test_skip_unchanged_sends_only_differing_fields(server: FakeGroupsServer) -> None:
    key = server.add_group(name="same", internal_note="old")
    async with _client(server) as client:
        sent = await client.groups.update(
            key, GroupPatch(name="same", internal_note="new"), skip_unchanged=True
        )
        assert sent
        nothing = await client.groups.update(key, GroupPatch(name="same"), skip_unchanged=True)
        assert not nothing
        assert not await client.groups.update(key, GroupPatch())
    patches = [r.body for r in server.requests if r.method == "PATCH"]
    assert patches == [{"internal_note": "new"}]
    assert client.stats.updates_sent == 1


async def test_every_fifth_update_spends_a_credit(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    before = server.credits
    async with _client(server) as client:
        for i in range(10):
            await client.groups.update(key, GroupPatch(name=f"n{i}"))
    assert before - server.credits == 2
    assert client.stats.estimated_credits == 2


async def test_publishing_a_draft_made_in_the_app_is_refused(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    server.set_drafted_in_app(key)
    async with _client(server) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.groups.update(key, GroupPatch(status=GroupStatus.PUBLISHED))
    assert "set to draft in the application" in str(info.value)
    assert info.value.hint is None  # the server said why: no guess about the key


async def test_delete_cascades_to_linked_events(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g", events=3)
    other = server.add_group(name="h", events=1)
    async with _client(server) as client:
        await client.groups.delete(key)
        await client.groups.delete(key, missing_ok=True)
        with pytest.raises(NotFoundError):
            await client.groups.delete(key)
    assert list(server.groups) == [other]
    assert set(server.events.values()) == {other}


async def test_server_side_validation_error_is_a_bad_request(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")  # subscription "no"
    async with _client(server) as client:
        # a URL alone passes the patch's own rules; the stored subscription decides
        with pytest.raises(BadRequestError) as info:
            await client.groups.update(key, GroupPatch(subscription_cal_url="https://e.com/x"))
    assert info.value.status == 400
    assert info.value.message


async def test_malformed_json_on_a_read_is_retried(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    server.inject(malformed=True, method="GET")
    async with _client(server) as client:
        assert (await client.groups.get(key)).name == "g"


async def test_malformed_json_after_retries_is_unexpected_response(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g")
    server.inject(malformed=True, method="GET", times=3)
    async with _client(server) as client:
        with pytest.raises(UnexpectedResponseError) as info:
            await client.groups.get(key)
    assert "JSON" in str(info.value)


async def test_tls_is_verified_and_works_with_the_given_context() -> None:
    async with FakeGroupsServer(tls=True) as fake:
        key = fake.add_group(name="secure")
        assert fake.url.startswith("https://")
        async with _client(fake, ssl_context=fake.ssl_context()) as client:
            assert (await client.groups.get(key)).name == "secure"
        async with _client(fake) as client:  # the system trust store knows no test CA
            with pytest.raises(TransportError) as info:
                await client.groups.get(key)
        assert "certificate" in str(info.value).lower()
        assert len([r for r in fake.requests if r.method == "GET"]) == 1


async def test_tls_verification_failure_names_host_port_and_reason() -> None:
    async with FakeGroupsServer(tls=True) as fake, _client(fake, rate_limit=None) as client:
        with pytest.raises(TransportError) as info:
            await client.groups.get(fake.add_group(name="secure"))
    port = fake.url.split(":")[2].split("/")[0]
    assert f"TLS certificate verification failed for 127.0.0.1:{port}: " in str(info.value)
    assert "certificate" in str(info.value).split(": ", 2)[-1]
    assert "SSLContext" not in str(info.value)


async def test_borrowed_session_is_used_and_left_open(server: FakeGroupsServer) -> None:
    key = server.add_group(name="g")
    async with aiohttp.ClientSession() as session:
        async with _client(server, session=session, max_connections=2) as client:
            await asyncio.gather(*(client.groups.get(key) for _ in range(6)))
        assert not session.closed
        assert server.peak_in_flight <= 2


async def test_client_used_after_close_raises_a_clear_error(server: FakeGroupsServer) -> None:
    from asyncgroups import ClientStateError

    key = server.add_group(name="g")
    client = _client(server)
    async with client:
        await client.groups.get(key)
    await client.close()
    with pytest.raises(ClientStateError, match="closed"):
        await client.groups.get(key)


def test_client_used_from_a_second_event_loop_fails_at_once() -> None:
    from asyncgroups import ClientStateError

    async def scenario() -> None:
        async with FakeGroupsServer() as fake:
            key = fake.add_group(name="g")
            client = _client(fake)
            await client.groups.get(key)

            def other_loop() -> None:
                async def use() -> None:
                    await client.groups.get(key)

                with pytest.raises(ClientStateError, match="another event loop"):
                    asyncio.run(use())

            await asyncio.to_thread(other_loop)
            await client.close()

    asyncio.run(scenario())



async def test_borrowed_session_raising_for_status_still_gets_typed_errors(
    server: FakeGroupsServer,
) -> None:
    async with (
        aiohttp.ClientSession(raise_for_status=True) as session,
        _client(server, session=session) as client,
    ):
        with pytest.raises(NotFoundError) as info:
            await client.groups.get("31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa")
    assert len(server.requests) == 1  # a 404 is an answer, not a dropped connection
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert all(server.api_key not in repr(getattr(e, "__dict__", e)) for e in chain if e)


async def test_borrowed_session_with_auth_is_refused(server: FakeGroupsServer) -> None:
    from asyncgroups import ValidationError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # auth=, in newer aiohttp
        session = aiohttp.ClientSession(auth=aiohttp.BasicAuth("u", "p"))
    async with session:
        with pytest.raises(ValidationError, match="auth") as info:
            _client(server, session=session)
    assert info.value.field == "session"


async def test_borrowed_session_cannot_switch_tls_verification_off() -> None:
    from asyncgroups import ValidationError

    async with FakeGroupsServer(tls=True) as fake:
        connector = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            with pytest.raises(ValidationError, match="ssl_context="):
                _client(fake, session=session)
        assert fake.requests == []


async def test_borrowed_pool_smaller_than_the_cap_does_not_eat_the_timeout(
    server: FakeGroupsServer,
) -> None:
    keys = [server.add_group(name=f"g{i}") for i in range(3)]
    server.inject(delay=0.2, method="GET", times=3)
    connector = aiohttp.TCPConnector(limit=1)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        _client(server, session=session, timeout=0.35) as client,
    ):
        groups = await asyncio.gather(*(client.groups.get(k) for k in keys))
    assert [g.prokey for g in groups] == keys
    assert client.stats.retries == 0


async def test_delete_whose_reply_was_lost_succeeds_on_the_retry_404(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g")
    server.inject(lost_reply=True, method="DELETE")
    async with _client(server) as client:
        await client.groups.delete(key)  # the retry's 404: the first attempt did it
    assert not server.groups
    assert [r.method for r in server.requests] == ["DELETE", "DELETE"]


async def test_plain_404_on_delete_still_raises_after_a_5xx_retry(
    server: FakeGroupsServer,
) -> None:
    server.inject(status=503, method="DELETE")  # refused without acting: proves nothing
    async with _client(server) as client:
        with pytest.raises(NotFoundError):
            await client.groups.delete("31a17cce-bbbb-4ee3-99bb-6144c6a3aaaa")


async def test_closing_the_client_stops_a_call_between_retries(server: FakeGroupsServer) -> None:
    from asyncgroups import ClientStateError

    key = server.add_group(name="g")
    server.inject(status=503, method="GET")
    client = _client(server, retry=RetryPolicy(max_attempts=3, backoff_base=0.2, jitter=False))
    async with client:
        call = asyncio.create_task(client.groups.get(key))
        while not server.requests:
            await asyncio.sleep(0.005)
        await client.close()
        with pytest.raises(ClientStateError, match="closed"):
            await call


async def test_closing_the_client_stops_calls_waiting_to_be_sent(
    server: FakeGroupsServer,
) -> None:
    """Calls queued for the in-flight cap when the client closes end with the client's
    own error, not aiohttp's "Session is closed" from inside the pipeline."""
    from asyncgroups import ClientStateError

    key = server.add_group(name="g")
    server.inject(delay=0.1, method="GET")  # holds the one slot while the others wait
    client = _client(server, max_connections=1, retry=None)
    async with client:
        calls = [asyncio.create_task(client.groups.get(key)) for _ in range(3)]
        while not server.requests:
            await asyncio.sleep(0.005)
        await client.close()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    waited = outcomes[1:]  # the first was on the wire: its connection was closed
    assert [type(error) for error in waited] == [ClientStateError, ClientStateError]
    assert all("closed while the call waited" in str(error) for error in waited)
    assert len(server.requests) == 1


async def test_client_stats_count_reads_pages_and_writes_per_attempt(
    server: FakeGroupsServer,
) -> None:
    key = server.add_group(name="g")
    server.inject(status=503, method="GET", path=f"/group/{key}")
    async with _client(server) as client:
        await client.groups.get(key)  # 503, then 200: two reads
        await client.groups.list()  # one group: its page, then the empty page that ends it
        made = await client.groups.create(NewGroup("h"))
        await client.groups.update(made, GroupPatch(name="i"))
        await client.groups.delete(made)
        await client.groups.latest()
    stats = client.stats
    assert (stats.reads, stats.pages, stats.writes) == (3, 2, 3)
    assert stats.requests == stats.reads + stats.pages + stats.writes == len(server.requests)
    assert stats.retries == 1

"""TLS trust over real TLS: a borrowed session's own verifying connector is honoured.

The fake server runs with a trustme CA (`FakeGroupsServer(tls=True)`); its
`ssl_context()` trusts that CA, as a corporate CA bundle would be trusted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from conftest import local_client

from asyncgroups import TransportError, ValidationError
from asyncgroups.testing import FakeGroupsServer


@pytest.fixture
async def tls_server() -> AsyncIterator[FakeGroupsServer]:
    async with FakeGroupsServer(tls=True) as fake:
        yield fake


def _no_hostname_check(server: FakeGroupsServer) -> ssl.SSLContext:
    context = server.ssl_context()
    context.check_hostname = False  # the chain is still checked; the name is not
    return context


def _cert_none(server: FakeGroupsServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_borrowed_session_whose_connector_trusts_a_private_ca_is_honoured(
    tls_server: FakeGroupsServer,
) -> None:
    key = tls_server.add_group(name="corporate")
    connector = aiohttp.TCPConnector(ssl=tls_server.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        local_client(tls_server, session=session) as client,
    ):
        assert (await client.groups.get(key)).name == "corporate"
        assert (await client.groups.get(key)).name == "corporate"  # a pooled connection
    assert [(r.method, r.path) for r in tls_server.requests] == [("GET", f"/v1/group/{key}")] * 2


async def test_borrowed_session_pinning_the_server_certificate_is_honoured(
    tls_server: FakeGroupsServer,
) -> None:
    key = tls_server.add_group(name="pinned")
    pem = await asyncio.to_thread(ssl.get_server_certificate, (tls_server.host, tls_server.port))
    pin = aiohttp.Fingerprint(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest())
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pin)) as session,
        local_client(tls_server, session=session) as client,
    ):
        assert (await client.groups.get(key)).name == "pinned"


@pytest.mark.parametrize(
    ("make_ssl", "shown"),
    [
        (lambda server: False, "ssl=False"),
        (_cert_none, "verification off"),
        (_no_hostname_check, "verification off"),
    ],
    ids=["ssl-false", "cert-none", "no-hostname-check"],
)
async def test_borrowed_session_that_does_not_verify_is_refused_before_any_request(
    tls_server: FakeGroupsServer,
    make_ssl: Callable[[FakeGroupsServer], ssl.SSLContext | bool],
    shown: str,
) -> None:
    connector = aiohttp.TCPConnector(ssl=make_ssl(tls_server))
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(ValidationError) as info:
            local_client(tls_server, session=session)
    assert info.value.field == "session"
    assert shown in str(info.value)
    assert "pass ssl_context=" in str(info.value)
    assert tls_server.api_key not in str(info.value)
    assert tls_server.requests == []


async def test_explicit_ssl_context_wins_over_a_borrowed_connector(
    tls_server: FakeGroupsServer,
) -> None:
    key = tls_server.add_group(name="explicit")
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session,
        local_client(tls_server, session=session, ssl_context=tls_server.ssl_context()) as client,
    ):
        assert (await client.groups.get(key)).name == "explicit"


async def test_borrowed_default_connector_verifies_against_the_system_trust_store(
    tls_server: FakeGroupsServer,
) -> None:
    key = tls_server.add_group(name="unknown CA")
    async with (
        aiohttp.ClientSession() as session,
        local_client(tls_server, session=session) as client,
    ):
        with pytest.raises(TransportError, match="certificate"):
            await client.groups.get(key)


@pytest.mark.parametrize("make_ssl", [_cert_none, _no_hostname_check])
async def test_explicit_ssl_context_that_does_not_verify_is_refused(
    tls_server: FakeGroupsServer, make_ssl: Callable[[FakeGroupsServer], ssl.SSLContext]
) -> None:
    with pytest.raises(ValidationError, match="does not verify") as info:
        local_client(tls_server, ssl_context=make_ssl(tls_server))
    assert info.value.field == "ssl_context"


async def test_borrowed_unverifying_connector_is_fine_over_loopback_http() -> None:
    async with FakeGroupsServer() as plain:
        key = plain.add_group(name="plain")
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session,
            local_client(plain, session=session) as client,
        ):
            assert (await client.groups.get(key)).name == "plain"

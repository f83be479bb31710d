"""The fake server's own certificate authority, for `FakeGroupsServer(tls=True)`."""

from __future__ import annotations

import ssl

__all__ = ["FakeCA"]


class FakeCA:
    """A throwaway CA (trustme): it signs the server's certificate, and clients trust it."""

    __slots__ = ("_ca",)

    def __init__(self) -> None:
        try:
            import trustme
        except ImportError as err:
            raise ImportError(
                'FakeGroupsServer(tls=True) needs trustme: pip install "asyncgroups[testing]" '
                "(or pip install trustme)"
            ) from err
        self._ca = trustme.CA()

    def server_context(self, host: str) -> ssl.SSLContext:
        """A server-side context with a certificate for `host`, 127.0.0.1 and localhost."""
        names = dict.fromkeys(("127.0.0.1", "localhost", host))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*names).configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    def pem(self) -> bytes:
        """This CA's certificate as PEM."""
        return self._ca.cert_pem.bytes()

"""An HTTP client that connects only to the addresses a URL check accepted. A webhook's host is resolved and
checked before every delivery (shared/webhooks.py); if the POST resolved it again, a name with a short TTL could
answer a public address to the check and a private one to the connection (DNS rebinding). Here the connection
goes to the checked address, while the URL keeps the name: the Host header, TLS SNI and certificate check are
for the name, as the receiver expects."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from shared.outbound import Target


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections for `host` to `addresses` (in order, the next when one refuses), never resolving
    the name; any other host is refused."""

    def __init__(self, host: str, addresses: tuple[str, ...]) -> None:
        self.host, self.addresses = host, addresses
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host != self.host or not self.addresses:
            raise httpcore.ConnectError(f"{host} is not the checked host {self.host}; not connecting")
        failure: Exception | None = None
        for address in self.addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a pinned client connects over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, target: Target, verify: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False)
        # httpx builds its connection pool with the default network backend and offers no argument for another;
        # the pool is replaced by one with the same TLS settings that connects through PinnedBackend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify or httpx.create_ssl_context(trust_env=False), max_connections=1,
            # The host as httpcore will name it: lower case, an international name in its ASCII (IDNA) form.
            network_backend=PinnedBackend(httpx.URL(target.url).raw_host.decode("ascii"), target.addresses),
        )


def pinned_client(target: Target, timeout: float, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    """A client for one call to `target.url`: no redirects followed (a redirect could name any host), no proxy
    from the environment, connections only to `target.addresses`."""
    return httpx.AsyncClient(transport=PinnedTransport(target, verify), timeout=timeout, follow_redirects=False,
                             trust_env=False)

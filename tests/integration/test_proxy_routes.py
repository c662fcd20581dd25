"""shared.proxy against a real PostgreSQL and a real Caddy (no Docker): the routes Caddy runs are the ones
Postgres describes, applying is idempotent and safe to race, and a name belongs to one deployment."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import proxy
from shared.config import Settings
from shared.db.models import Deployment, DomainName
from shared.embedded import EmbeddedCaddy, start_caddy
from shared.net import free_tcp_port
from tests.integration.conftest import make_deployment


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello through caddy\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def caddy(settings: Settings) -> Iterator[EmbeddedCaddy]:
    running = start_caddy(settings.home / f"home-{uuid4().hex[:6]}" / "caddy")
    yield running
    running.stop()


async def test_apply_routes_what_postgres_says_and_removes_it_again(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, caddy: EmbeddedCaddy, upstream: str
) -> None:
    proxied = settings.model_copy(update={
        "proxy_admin": caddy.admin, "proxy_http_port": free_tcp_port(), "proxy_https_port": free_tcp_port(),
        "base_domain": "apps.test", "acme": False, "home": caddy.storage.parent,
    })
    host_port = free_tcp_port()
    deployment_id = await make_deployment(sessions, f"/tmp/{uuid4()}", status="running", upstream=upstream,
                                          assigned_port=host_port)
    async with sessions() as session:
        session.add(DomainName(deployment_id=deployment_id, name="shop.test"))
        await session.commit()

    # Five appliers at once (API, runner replicas, reconciler): the lock orders them; all succeed.
    async def apply_once() -> int:
        async with sessions() as session:
            return await proxy.apply(session, proxied)

    assert await asyncio.gather(*(apply_once() for _ in range(5))) == [1] * 5
    async with httpx.AsyncClient(timeout=10) as client:
        config = (await client.get(f"http://{caddy.admin}/config/apps/http/servers")).json()
        hosts = [{"host": ["shop.test", f"demo-{deployment_id}.apps.test"]}]
        assert config["domains"]["routes"][0]["match"] == hosts
        assert (await client.get(f"http://127.0.0.1:{host_port}/")).text == "hello through caddy\n"

    async with sessions() as session:
        await session.execute(update(Deployment).where(Deployment.id == deployment_id).values(status="stopped"))
        await session.commit()
        assert await proxy.apply(session, proxied) == 0
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(f"http://{caddy.admin}/config/apps/http/servers")).json() == {}
        with pytest.raises(httpx.ConnectError):  # the host port is free again
            await client.get(f"http://127.0.0.1:{host_port}/")


async def test_a_name_belongs_to_one_deployment(sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await make_deployment(sessions, f"/tmp/{uuid4()}")
    second = await make_deployment(sessions, f"/tmp/{uuid4()}")
    async with sessions() as session:
        session.add(DomainName(deployment_id=first, name="taken.test"))
        await session.commit()
        session.add(DomainName(deployment_id=second, name="taken.test"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_certificates_survive_a_proxy_restart(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, upstream: str
) -> None:
    home = settings.home / f"restart-{uuid4().hex[:6]}"
    storage = home / "caddy"  # where shared.proxy keeps Caddy's storage: PORTSIDE_HOME/caddy
    proxied = settings.model_copy(update={
        "proxy_http_port": free_tcp_port(), "proxy_https_port": free_tcp_port(), "acme": False, "home": home,
    })
    deployment_id = await make_deployment(sessions, f"/tmp/{uuid4()}", status="running", upstream=upstream,
                                          assigned_port=free_tcp_port())
    async with sessions() as session:
        session.add(DomainName(deployment_id=deployment_id, name="kept.test"))
        await session.commit()
    root = storage / "pki/authorities/local/root.crt"
    first_run: list[bytes] = []
    for _ in range(2):
        caddy = start_caddy(storage)
        try:
            async with sessions() as session:
                await proxy.apply(session, proxied.model_copy(update={"proxy_admin": caddy.admin}))
            # The certificate is issued in the background after the load (slowly on a busy machine).
            deadline = time.monotonic() + 60
            while not list(storage.glob("certificates/*/kept.test/kept.test.crt")) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            (cert,) = storage.glob("certificates/*/kept.test/kept.test.crt")
            current = [root.read_bytes(), cert.read_bytes()]
        finally:
            caddy.stop()
        first_run = first_run or current
        # The second start finds the same CA and the same certificate under PORTSIDE_HOME/caddy.
        assert current == first_run

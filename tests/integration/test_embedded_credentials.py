"""The embedded servers `portside up` starts on a bare machine ask for generated credentials: a local process
that does not have them gets nothing (real PostgreSQL from pgserver, real nats-server)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import nats
import pytest
from nats.errors import NoServersError

from shared.embedded import EmbeddedNats, EmbeddedPostgres, start_nats


def _without_password(url: str) -> str:
    userinfo, rest = url.split("@", 1)
    return userinfo.rsplit(":", 1)[0] + ":@" + rest


async def test_embedded_postgres_refuses_a_connection_without_its_password(postgres_server: EmbeddedPostgres) -> None:
    # The session's server is started as the supervisor starts it: with a generated password.
    connection = await asyncpg.connect(postgres_server.url)
    try:
        assert await connection.fetchval("select 1") == 1
        rules = await connection.fetchval("select count(*) from pg_hba_file_rules where auth_method = 'trust'")
        assert rules == 0
    finally:
        await connection.close()
    for url in (_without_password(postgres_server.url), postgres_server.url.replace("test-pw", "guess", 1)):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(url)


async def test_embedded_nats_refuses_a_client_without_its_password(tmp_path: Path) -> None:
    server: EmbeddedNats = start_nats(tmp_path / "nats", password="generated-secret")
    try:
        client = await nats.connect(server.url)
        await client.close()
        with pytest.raises((NoServersError, nats.errors.Error, OSError)):
            await nats.connect(f"nats://127.0.0.1:{server.port}", max_reconnect_attempts=0, connect_timeout=2,
                               allow_reconnect=False)
    finally:
        server.stop()

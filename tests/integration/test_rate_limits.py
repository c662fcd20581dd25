"""The per-minute limits live in PostgreSQL: two API replicas (two limiters, each with its own engine) count the
same hits, and concurrent requests never let more through than the limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.auth import RateLimiter
from shared.config import Settings
from shared.db.models import RateLimitHit
from shared.db.session import make_engine, make_sessionmaker
from shared.errors import ErrorCode, PortsideError


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    engines = [make_engine(settings.require_database_url(), application_name=f"portside-api-{n}", pool_size=10)
               for n in (1, 2)]
    yield RateLimiter(make_sessionmaker(engines[0])), RateLimiter(make_sessionmaker(engines[1]))
    for engine in engines:
        await engine.dispose()


async def _passed(limiter: RateLimiter, key: str, limit: int) -> bool:
    try:
        await limiter.hit(key, limit, "tries")
    except PortsideError as refused:
        assert refused.code == ErrorCode.RATE_LIMITED and int(refused.headers["Retry-After"]) >= 1
        return False
    return True


async def test_rate_limit_holds_across_two_api_replicas(replicas: tuple[RateLimiter, RateLimiter]) -> None:
    first, second = replicas
    key = f"login-ip:{uuid4()}"
    assert [await _passed(first, key, 3), await _passed(second, key, 3), await _passed(first, key, 3)] == [True] * 3
    with pytest.raises(PortsideError) as caught:
        await second.hit(key, 3, "login attempts from this address")
    assert caught.value.code == ErrorCode.RATE_LIMITED
    assert "login attempts from this address" in caught.value.message
    assert await _passed(second, f"login-ip:{uuid4()}", 3)  # another key has its own window


async def test_concurrent_hits_on_two_replicas_let_exactly_the_limit_through(
    replicas: tuple[RateLimiter, RateLimiter], sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = f"deploy:{uuid4()}"
    outcomes = await asyncio.gather(*(_passed(replicas[n % 2], key, 5) for n in range(24)))
    assert sum(outcomes) == 5
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(RateLimitHit.key == key)) == 5


async def test_hits_older_than_the_window_no_longer_count(replicas: tuple[RateLimiter, RateLimiter]) -> None:
    first, second = replicas
    key = f"deploy:{uuid4()}"
    await first.hit(key, 1, "deploys", window=3)
    with pytest.raises(PortsideError):  # within the window: refused
        await second.hit(key, 1, "deploys", window=3)
    await asyncio.sleep(3.2)
    await second.hit(key, 1, "deploys", window=3)  # the old hit slid out

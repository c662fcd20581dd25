from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.db.session import make_engine, make_sessionmaker


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.require_database_url(), application_name="portside-tests", pool_size=20)
    maker = make_sessionmaker(engine)
    yield maker
    async with maker() as session:
        await session.execute(delete(Deployment))
        await session.execute(delete(Repository))
        await session.commit()
    await engine.dispose()


async def make_deployment(maker: async_sessionmaker[AsyncSession], path: str, status: str = "ready", **fields) -> int:  # type: ignore[no-untyped-def]
    async with maker() as session:
        repo = Repository(name="demo", path=path)
        session.add(repo)
        await session.flush()
        deployment = Deployment(repository_id=repo.id, repo_name="demo", status=status, **fields)
        session.add(deployment)
        await session.commit()
        return deployment.id

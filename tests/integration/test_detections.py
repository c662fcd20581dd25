"""Detections are stored one row per (repository, app path), validated and versioned, written in one
statement: concurrent detections of one repository keep each other's results (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import service as api
from shared.config import Settings
from shared.db.models import DetectionRecord
from shared.db.repository import load_detection, store_detection
from shared.detection import Detection
from tests.conftest import copy_fixture


async def test_concurrent_detections_of_one_repository_all_stay(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    root = copy_fixture("monorepo-backend-frontend", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
    paths = [f"app{i}" for i in range(12)]

    async def detect_one(app_path: str, stack: str) -> None:
        async with sessions() as session:
            await store_detection(session, repo.id, app_path, Detection(stack=stack, confidence=50))
            await asyncio.sleep(0)  # let the others interleave before the commit
            await session.commit()

    # Twelve app paths at once, then the same path twice at once: nothing lost, one row per path.
    await asyncio.gather(*(detect_one(p, "node") for p in paths))
    await asyncio.gather(detect_one("app0", "python"), detect_one("app0", "python"))
    async with sessions() as session:
        found = {p: await load_detection(session, repo.id, p) for p in paths}
    assert all(found.values()), [p for p, d in found.items() if d is None]
    assert found["app0"] is not None and found["app0"].stack == "python"
    assert {d.stack for p, d in found.items() if p != "app0" and d} == {"node"}


async def test_a_detection_of_another_schema_version_reads_as_missing(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    root = copy_fixture("python-flask", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        await store_detection(session, repo.id, "", Detection(stack="python", confidence=90))
        await session.commit()
        assert (await load_detection(session, repo.id, "")) == Detection(stack="python", confidence=90)
        await session.execute(update(DetectionRecord).where(DetectionRecord.repository_id == repo.id)
                              .values(schema_version=0))
        await session.commit()
        assert await load_detection(session, repo.id, "") is None

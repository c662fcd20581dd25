"""The detector's side effects: run the pure detection on a repository and store the result.
(service.py stays pure, so the CLI and tests call it directly.)"""

from __future__ import annotations

import logging

import anyio

from services.detector.service import detect
from shared.checkout import source_root
from shared.db.models import Repository
from shared.db.repository import store_detection
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import DetectCompleted, DetectFailed, DetectRequested
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

log = logging.getLogger(__name__)


async def detect_and_store(ctx: WorkerContext, event: DetectRequested) -> None:
    async with ctx.sessions() as session:
        repo = await session.get(Repository, event.repository_id)
        if repo is None:
            await ctx.publish(Subject.DETECT_FAILED, DetectFailed(
                correlation_id=event.correlation_id, repository_id=event.repository_id,
                error_code=ErrorCode.REPOSITORY_NOT_FOUND, message=f"Repository {event.repository_id} does not exist."))
            return
        try:
            root = await anyio.to_thread.run_sync(source_root, ctx.settings, repo)
        except PortsideError as exc:
            await ctx.publish(Subject.DETECT_FAILED, DetectFailed(
                correlation_id=event.correlation_id, repository_id=repo.id, error_code=exc.code, message=exc.message))
            return
        if not (root / event.app_path).is_dir():
            await ctx.publish(Subject.DETECT_FAILED, DetectFailed(
                correlation_id=event.correlation_id, repository_id=repo.id, error_code=ErrorCode.REPO_NOT_FOUND,
                message=f"{root / event.app_path} is not a directory; check the repository path and app_path."))
            return
        detection = await anyio.to_thread.run_sync(detect, root, event.app_path)
        # One row per app path (a monorepo has one detection per app), replaced atomically.
        await store_detection(session, repo.id, event.app_path, detection)
        await session.commit()
    await ctx.publish(Subject.DETECT_COMPLETED, DetectCompleted(
        correlation_id=event.correlation_id, repository_id=event.repository_id,
        app_path=event.app_path, detection=detection))

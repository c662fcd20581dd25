"""Deployment writes that must be guarded: status transitions and port claims. No other code writes `status`,
so this is also where the public events about them are staged (shared/messaging/outbox.py), in the same
transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Deployment, DeploymentEvent, DetectionRecord
from shared.db.status import PORT_HOLDING, DeploymentStatus, allowed_sources
from shared.detection import DETECTION_SCHEMA_VERSION, Detection
from shared.messaging.outbox import stage
from shared.messaging.public import (
    BuildFinished,
    BuildStarted,
    DeploymentCrashed,
    DeploymentStatusChanged,
    PortAssigned,
    PortFreed,
)
from shared.messaging.subjects import PublicSubject as P


@dataclass(frozen=True)
class TransitionResult:
    applied: bool
    current: str | None  # the status the row has now (None if the deployment does not exist)


# A new attempt starts clean: the last failure's code, message and exit code stop describing the deployment.
_CLEARS_FAILURE = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.GENERATING})
_FAILURES = frozenset({DeploymentStatus.ERROR, DeploymentStatus.BUILD_FAILED, DeploymentStatus.CRASHED})


async def transition(
    session: AsyncSession,
    deployment_id: int,
    to: DeploymentStatus,
    message: str | None = None,
    *,
    error_code: str | None = None,
    only_from: frozenset[DeploymentStatus] | None = None,
    **fields: Any,
) -> TransitionResult:
    """Move a deployment to `to` if its current status allows it (and is in `only_from`, when given: what the
    caller saw, so a status that moved on meanwhile is not overwritten), record the event, and set `fields`.

    Entering a failure status records `error_code` and the message as `error_message`; entering a status
    that starts a new attempt clears them. The guard is in the UPDATE's WHERE clause, so two replicas racing
    on one message cannot both win. The public events the change means are staged with it. The caller commits.
    """
    # Locks the row for this transaction (the UPDATE below would anyway) so `before` is what the UPDATE changes.
    before = (await session.execute(
        select(Deployment.status, Deployment.assigned_port, Deployment.updated_at)
        .where(Deployment.id == deployment_id).with_for_update()
    )).first()
    if before is None:
        return TransitionResult(applied=False, current=None)
    sources = [s.value for s in allowed_sources(to) if only_from is None or s in only_from]
    values: dict[str, Any] = {"status": to.value, "updated_at": func.now()}
    if to in _FAILURES:
        values.update(error_code=error_code, error_message=message)
    elif to in _CLEARS_FAILURE:
        values.update(error_code=None, error_message=None, exit_code=None)
    if error_code is not None:
        values["error_code"] = error_code
    values.update(fields)
    stmt = (
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status.in_(sources))
        .values(**values)
        .returning(Deployment.status)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        current = await session.scalar(select(Deployment.status).where(Deployment.id == deployment_id))
        return TransitionResult(applied=False, current=current)
    await session.execute(
        insert(DeploymentEvent).values(
            deployment_id=deployment_id, status=to.value, message=message, error_code=error_code
        )
    )
    await _stage_transition(session, deployment_id, before, to, message, error_code, fields)
    return TransitionResult(applied=True, current=to.value)


async def _stage_transition(
    session: AsyncSession, deployment_id: int, before: Any, to: DeploymentStatus, message: str | None,
    error_code: str | None, fields: dict[str, Any],
) -> None:
    """The public events of one applied transition. Re-entering the same status (a redelivered job resuming)
    is not a change, so it publishes nothing."""
    previous = DeploymentStatus(before.status)
    if previous == to:
        return
    await stage(session, P.DEPLOYMENT_STATUS_CHANGED, DeploymentStatusChanged(
        deployment_id=deployment_id, previous_status=previous.value, status=to.value, message=message,
        error_code=error_code))
    if to == DeploymentStatus.CRASHED:
        await stage(session, P.DEPLOYMENT_CRASHED, DeploymentCrashed(
            deployment_id=deployment_id, exit_code=fields.get("exit_code"), error_code=error_code, message=message))
    if to == DeploymentStatus.BUILDING:
        await stage(session, P.BUILD_STARTED, BuildStarted(deployment_id=deployment_id))
    # A build that succeeded says so itself (the builder stages it with the image); any other way out of
    # `building` is a build that did not finish well: failed, cancelled by a stop, or given up on.
    if previous == DeploymentStatus.BUILDING and to != DeploymentStatus.STARTING:
        seconds = fields.get("build_seconds")
        if seconds is None and before.updated_at is not None:
            seconds = round((datetime.now(UTC) - before.updated_at).total_seconds(), 3)
        await stage(session, P.BUILD_FINISHED, BuildFinished(
            deployment_id=deployment_id, succeeded=False, duration_seconds=seconds, error_code=error_code))
    old_port = before.assigned_port if previous in PORT_HOLDING else None
    new_port = fields.get("assigned_port", before.assigned_port) if to in PORT_HOLDING else None
    await _stage_port_change(session, deployment_id, old_port, new_port)


async def _stage_port_change(session: AsyncSession, deployment_id: int, old: int | None, new: int | None) -> None:
    """A held port changed hands: the old one is free, the new one assigned (None: none held)."""
    if old == new:
        return
    if old is not None:
        await stage(session, P.PORT_FREED, PortFreed(deployment_id=deployment_id, port=old))
    if new is not None:
        await stage(session, P.PORT_ASSIGNED, PortAssigned(deployment_id=deployment_id, port=new))


async def record_event(
    session: AsyncSession, deployment_id: int, status: str, message: str, error_code: str | None = None
) -> None:
    """Add a timeline entry that does not change the status (e.g. 'image built in 12 s')."""
    await session.execute(
        insert(DeploymentEvent).values(
            deployment_id=deployment_id, status=status, message=message, error_code=error_code
        )
    )


async def claim_port(session: AsyncSession, deployment_id: int, port: int) -> bool:
    """Try to write `port` on the deployment; False when another active deployment holds it.

    Uses a savepoint so a unique violation does not poison the caller's transaction.
    """
    before = (await session.execute(
        select(Deployment.status, Deployment.assigned_port).where(Deployment.id == deployment_id).with_for_update()
    )).first()
    try:
        async with session.begin_nested():
            await session.execute(
                update(Deployment).where(Deployment.id == deployment_id).values(assigned_port=port)
            )
    except IntegrityError:
        return False
    if before is not None and before.status in PORT_HOLDING:
        await _stage_port_change(session, deployment_id, before.assigned_port, port)
    return True


async def store_detection(session: AsyncSession, repository_id: int, app_path: str, detection: Detection) -> None:
    """Replace the app directory's detection in one statement: two detections of one repository (other app
    paths, or the same one twice) never lose each other's result. The caller commits."""
    values = {"schema_version": DETECTION_SCHEMA_VERSION, "result": detection.model_dump(mode="json")}
    stmt = pg_insert(DetectionRecord).values(repository_id=repository_id, app_path=app_path, **values)
    await session.execute(stmt.on_conflict_do_update(
        constraint="uq_detections_repository_app_path", set_={**values, "detected_at": func.now()},
    ))


async def load_detection(session: AsyncSession, repository_id: int, app_path: str) -> Detection | None:
    """The stored detection, validated; None when there is none, or it was written by another schema version."""
    row = await session.scalar(select(DetectionRecord).where(
        DetectionRecord.repository_id == repository_id, DetectionRecord.app_path == app_path,
    ))
    if row is None or row.schema_version != DETECTION_SCHEMA_VERSION:
        return None
    return Detection.model_validate(row.result)

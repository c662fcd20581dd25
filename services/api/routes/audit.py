"""The audit trail: who did what, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from services.api.deps import AdminUser, SessionDep
from services.api.schemas import AuditEventPublic, Envelope
from shared.db.models import AuditEvent

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=Envelope[list[AuditEventPublic]])
async def list_audit(
    _: AdminUser, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="only events older than this id (paging)")] = None,
) -> Envelope[list[AuditEventPublic]]:
    """The newest events first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = (await session.scalars(query)).all()
    return Envelope(data=[AuditEventPublic.model_validate(r) for r in rows])

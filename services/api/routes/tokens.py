"""Personal API tokens for the CLI and CI: shown once, stored hashed, listed with their last use, revocable."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.api.auth import API_TOKEN_PREFIX, audit, sha256
from services.api.deps import CurrentUser, SessionDep
from services.api.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenPublic, Envelope
from shared.db.models import ApiToken
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/tokens", tags=["tokens"])


@router.post("", status_code=201, response_model=Envelope[ApiTokenCreated])
async def create_token(body: ApiTokenCreate, request: Request, user: CurrentUser, session: SessionDep) -> Envelope[ApiTokenCreated]:
    """A token that acts as you (with your role). Its value is in this answer only; store it now."""
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=body.name, token_hash=sha256(token), prefix=token[:12])
    session.add(row)
    await session.flush()
    await audit(session, request, user, "token_created", f"token:{row.id}", body.name)
    await session.commit()
    return Envelope(data=ApiTokenCreated(**ApiTokenPublic.model_validate(row).model_dump(), token=token))


@router.get("", response_model=Envelope[list[ApiTokenPublic]])
async def list_tokens(user: CurrentUser, session: SessionDep) -> Envelope[list[ApiTokenPublic]]:
    rows = (await session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))).all()
    return Envelope(data=[ApiTokenPublic.model_validate(r) for r in rows])


@router.delete("/{token_id}", response_model=Envelope[ApiTokenPublic])
async def revoke_token(token_id: int, request: Request, user: CurrentUser, session: SessionDep) -> Envelope[ApiTokenPublic]:
    row = await session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise PortsideError(ErrorCode.TOKEN_NOT_FOUND, f"You have no token {token_id}; list yours with GET /api/tokens.")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await audit(session, request, user, "token_revoked", f"token:{row.id}", row.name)
        await session.commit()
    return Envelope(data=ApiTokenPublic.model_validate(row))

"""Admins create, list, change and disable users."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select

from services.api.auth import Role, audit, hash_password
from services.api.deps import AdminUser, SessionDep
from services.api.schemas import Envelope, UserCreate, UserPublic, UserUpdate
from shared.db.models import User
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post("", status_code=201, response_model=Envelope[UserPublic])
async def create_user(body: UserCreate, request: Request, admin: AdminUser, session: SessionDep) -> Envelope[UserPublic]:
    email = body.email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise PortsideError(ErrorCode.EMAIL_TAKEN, f"{email} already has an account.")
    user = User(email=email, password_hash=hash_password(body.password), role=body.role)
    session.add(user)
    await session.flush()
    await audit(session, request, admin, "user_created", f"user:{user.id}", f"{email} as {body.role}")
    await session.commit()
    return Envelope(data=UserPublic.model_validate(user))


@router.get("", response_model=Envelope[list[UserPublic]])
async def list_users(_: AdminUser, session: SessionDep) -> Envelope[list[UserPublic]]:
    rows = (await session.scalars(select(User).order_by(User.id))).all()
    return Envelope(data=[UserPublic.model_validate(u) for u in rows])


@router.patch("/{user_id}", response_model=Envelope[UserPublic])
async def update_user(
    user_id: int, body: UserUpdate, request: Request, admin: AdminUser, session: SessionDep
) -> Envelope[UserPublic]:
    """Change a user's role or password, or disable (and re-enable) the account."""
    user = await session.get(User, user_id)
    if user is None:
        raise PortsideError(ErrorCode.USER_NOT_FOUND, f"User {user_id} does not exist; list them with GET /api/users.")
    demoted = (body.role not in (None, Role.ADMIN)) or body.disabled is True
    if user.role == Role.ADMIN and not user.disabled and demoted:
        admins = await session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.disabled.is_(False)))
        if admins == 1:
            raise PortsideError(ErrorCode.INVALID_STATE, "This is the last active admin; make another admin first.")
    changes = []
    if body.role is not None:
        user.role = body.role
        changes.append(f"role {body.role}")
    if body.disabled is not None:
        user.disabled = body.disabled
        changes.append("disabled" if body.disabled else "enabled")
    if body.password is not None:
        user.password_hash = hash_password(body.password)
        changes.append("password changed")
    await audit(session, request, admin, "user_updated", f"user:{user.id}", ", ".join(changes) or "no change")
    await session.commit()
    return Envelope(data=UserPublic.model_validate(user))

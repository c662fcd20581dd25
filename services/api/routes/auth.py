"""Accounts and sessions: register, log in, refresh (rotating), log out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import func, select, text

from services.api.auth import (
    DUMMY_HASH,
    Role,
    audit,
    client_ip,
    hash_password,
    revoke_family,
    sha256,
    unauthorized,
    verify_password,
)
from services.api.deps import CurrentUser, SessionDep, SettingsDep
from services.api.schemas import Envelope, LoginRequest, RefreshRequest, TokenPair, UserPublic, UserRegister
from shared.db.models import RefreshToken, User
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/auth", tags=["auth"])

# Serializes registrations, so two people racing for an empty installation do not both become admin.
_REGISTER_LOCK = 0x706F7274  # "port"


@router.post("/register", status_code=201, response_model=Envelope[UserPublic])
async def register(
    body: UserRegister, request: Request, session: SessionDep, settings: SettingsDep
) -> Envelope[UserPublic]:
    """Create an account. Open while no user exists (that first user is admin) and when PORTSIDE_OPEN_SIGNUP
    is true (new users are members); otherwise an admin creates users with POST /api/users."""
    await request.app.state.limiter.hit(
        f"register:{client_ip(request, settings)}",
        settings.login_attempts_per_ip_per_minute,
        "sign-ups from this address",
    )
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REGISTER_LOCK})
    count = await session.scalar(select(func.count()).select_from(User))
    if count and not settings.open_signup:
        raise PortsideError(
            ErrorCode.SIGNUP_CLOSED,
            "Sign-up is closed on this installation; ask an admin to "
            "create your account (or set PORTSIDE_OPEN_SIGNUP=true).",
        )
    email = body.email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise PortsideError(ErrorCode.EMAIL_TAKEN, f"{email} already has an account; log in instead.")
    user = User(email=email, password_hash=hash_password(body.password), role=Role.MEMBER if count else Role.ADMIN)
    session.add(user)
    await session.flush()
    await audit(session, request, user, "register", f"user:{user.id}", f"role {user.role}")
    await session.commit()
    return Envelope(data=UserPublic.model_validate(user))


@router.post("/login", response_model=TokenPair)
async def login(body: LoginRequest, request: Request, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Exchange email and password for a short-lived access token and a refresh token."""
    email = body.email.strip().lower()
    limiter = request.app.state.limiter
    await limiter.hit(
        f"login-ip:{client_ip(request, settings)}",
        settings.login_attempts_per_ip_per_minute,
        "login attempts from this address",
    )
    await limiter.hit(f"login-account:{email}", settings.login_attempts_per_minute, "login attempts for this account")
    user = await session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else DUMMY_HASH, body.password) or user is None or user.disabled:
        await audit(session, request, None, "login_failed", email=email)
        await session.commit()
        raise unauthorized("Wrong email or password (or the account is disabled).")
    pair = await request.app.state.tokens.issue_pair(session, user)
    await audit(session, request, user, "login")
    await session.commit()
    return TokenPair(**pair)


@router.post("/refresh", response_model=TokenPair)
async def refresh(body: RefreshRequest, request: Request, session: SessionDep) -> TokenPair:
    """Spend a refresh token for a new access token and a new refresh token (each refresh token works once)."""
    _, pair = await request.app.state.tokens.rotate(session, body.refresh_token)
    await session.commit()
    return TokenPair(**pair)


@router.post("/logout", response_model=Envelope[dict])
async def logout(body: RefreshRequest, session: SessionDep) -> Envelope[dict]:
    """End the session the refresh token belongs to (access tokens run out within minutes)."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256(body.refresh_token)))
    if row is not None:
        await revoke_family(session, row.family)
        await session.commit()
    return Envelope(data={"logged_out": True})


@router.get("/me", response_model=Envelope[UserPublic])
async def me(user: CurrentUser) -> Envelope[UserPublic]:
    return Envelope(data=UserPublic.model_validate(user))

"""Who is calling: argon2 password hashes, short-lived JWT access tokens, rotating refresh tokens, personal
API tokens, roles, the per-minute limits, and the audit trail."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Request
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from shared import access
from shared.config import Settings
from shared.db.models import ApiToken, AuditEvent, RefreshToken, User
from shared.errors import ErrorCode, PortsideError
from shared.secrets import home_key


class Role(StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"  # reads what every user may read, changes nothing


API_TOKEN_PREFIX = "pst_"
_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps "no such user" as slow as "wrong password".
DUMMY_HASH = _hasher.hash("portside-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def unauthorized(message: str, code: ErrorCode = ErrorCode.UNAUTHORIZED) -> PortsideError:
    return PortsideError(code, message, headers={"WWW-Authenticate": "Bearer"})


class Tokens:
    """Issues and checks access tokens with the installation's `jwt` key (PORTSIDE_HOME/keys/jwt)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def _key(self) -> bytes:
        # Read on first use, so building the app (`make docs`) writes no key file.
        return home_key(self.settings, "jwt")

    def access_token(self, user: User) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": str(user.id),
            "role": user.role,
            "typ": "access",
            "iat": now,
            "exp": now + timedelta(minutes=self.settings.access_token_minutes),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def user_id(self, token: str) -> int:
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized(
                "The access token expired; get a new one with POST /api/auth/refresh.", ErrorCode.TOKEN_EXPIRED
            ) from exc
        except jwt.PyJWTError as exc:
            raise unauthorized("The token is not valid; log in again (POST /api/auth/login).") from exc
        if claims.get("typ") != "access" or not str(claims["sub"]).isdigit():
            raise unauthorized("The token is not an access token; log in again (POST /api/auth/login).")
        return int(claims["sub"])

    async def issue_pair(self, session: AsyncSession, user: User, family: str | None = None) -> dict[str, str]:
        """An access token and a new refresh token (in `family` when rotating). The caller commits."""
        refresh = secrets.token_urlsafe(32)
        await session.execute(
            insert(RefreshToken).values(
                user_id=user.id,
                token_hash=sha256(refresh),
                family=family or secrets.token_hex(16),
                expires_at=datetime.now(UTC) + timedelta(days=self.settings.refresh_token_days),
            )
        )
        return {"access_token": self.access_token(user), "refresh_token": refresh, "token_type": "bearer"}

    async def rotate(self, session: AsyncSession, refresh: str) -> tuple[User, dict[str, str]]:
        """Spend a refresh token for a new pair. A token spent twice means it was copied: the whole family
        (every token descended from that login) is revoked."""
        now = datetime.now(UTC)
        row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == sha256(refresh)))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise unauthorized("The refresh token is not valid or expired; log in again (POST /api/auth/login).")
        if row.used_at is not None:
            await revoke_family(session, row.family)
            await session.commit()
            raise unauthorized(
                "This refresh token was already used, so every session of this login was ended; log in again."
            )
        user = await session.get(User, row.user_id)
        if user is None or user.disabled:
            raise unauthorized("This account is disabled; ask an admin.")
        row.used_at = now
        return user, await self.issue_pair(session, user, family=row.family)


async def revoke_family(session: AsyncSession, family: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


# A token's last use is written at most this often, so reads do not each cost a write.
_LAST_USED_EVERY = timedelta(seconds=60)


async def user_from_token(request: HTTPConnection, session: AsyncSession, token: str) -> User:
    if token.startswith(API_TOKEN_PREFIX):
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == sha256(token)))
        if row is None or row.revoked_at is not None:
            raise unauthorized("This API token is unknown or revoked; create one with POST /api/tokens.")
        now = datetime.now(UTC)
        if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY:
            row.last_used_at = now
            await session.commit()
        user_id = row.user_id
    else:
        user_id = request.app.state.tokens.user_id(token)
    user = await session.get(User, user_id)
    if user is None or user.disabled:
        raise unauthorized("This account is disabled or gone; ask an admin.")
    return user


def bearer(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Browsers cannot set headers on EventSource or WebSocket: the log stream alone takes the token as a query.
    if request.url.path.endswith("/logs/stream"):
        return request.query_params.get("access_token")
    return None


def can_see(user: User, owner_id: int | None) -> bool:
    """Admins and viewers see everything; a member sees what they own (shared/access.py has the rule)."""
    return access.can_see(user.role, user.id, owner_id)


def require_writer(user: User) -> User:
    if user.role == Role.VIEWER:
        raise PortsideError(
            ErrorCode.FORBIDDEN, "Viewers can read but not change anything; ask an admin for the member role."
        )
    return user


def require_admin(user: User) -> User:
    if user.role != Role.ADMIN:
        raise PortsideError(ErrorCode.FORBIDDEN, "Only an admin may do this.")
    return user


@dataclass
class RateLimiter:
    """Sliding one-minute windows per key, in this API process (the API runs as one process)."""

    windows: dict[str, deque[float]]

    def __init__(self) -> None:
        self.windows = {}

    def hit(self, key: str, limit: int, what: str, window: float = 60.0) -> None:
        now = time.monotonic()
        hits = self.windows.setdefault(key, deque())
        while hits and now - hits[0] >= window:
            hits.popleft()
        if len(hits) >= limit:
            retry = max(1, int(window - (now - hits[0])) + 1)
            raise PortsideError(
                ErrorCode.RATE_LIMITED, f"Too many {what}; try again in {retry} s.", headers={"Retry-After": str(retry)}
            )
        hits.append(now)
        if len(self.windows) > 100_000:  # forget idle keys rather than grow without bound
            for stale in [k for k, v in self.windows.items() if not v or now - v[-1] >= window]:
                del self.windows[stale]


def client_ip(request: Request, settings: Settings) -> str:
    if settings.trust_forwarded_for and (forwarded := request.headers.get("x-forwarded-for")):
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


async def audit(
    session: AsyncSession,
    request: Request | None,
    user: User | None,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    email: str | None = None,
) -> None:
    """Add an audit row (the caller commits)."""
    settings = request.app.state.settings if request is not None else None
    await session.execute(
        insert(AuditEvent).values(
            user_id=user.id if user else None,
            email=user.email if user else email,
            action=action,
            target=target,
            detail=detail,
            ip=client_ip(request, settings) if request is not None and settings else None,
        )
    )

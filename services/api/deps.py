"""Dependencies as Annotated aliases: one session per request, committed by the route's service call;
the calling user (`CurrentUser`), one who may change things (`WriterUser`), an admin (`AdminUser`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import bearer, require_admin, require_writer, unauthorized, user_from_token
from services.api.bus import Bus
from services.api.gitpush import GitHooks
from shared.config import Settings
from shared.db.models import User

# Declares the scheme in the OpenAPI document (the "Authorize" button on /docs); the check is get_current_user.
_scheme = HTTPBearer(auto_error=False, description="An access token from POST /api/auth/login, or a personal "
                                                   "API token (pst_...) from POST /api/tokens.")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def get_bus(request: Request) -> Bus:
    return request.app.state.bus


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_git_hooks(request: Request) -> GitHooks:
    return request.app.state.git_hooks


# Ids are Postgres BIGINTs: a larger number is a 422, not a database error.
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]

SessionDep = Annotated[AsyncSession, Depends(get_session)]
BusDep = Annotated[Bus, Depends(get_bus)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
GitHooksDep = Annotated[GitHooks, Depends(get_git_hooks)]


async def get_current_user(request: Request, session: SessionDep, _: Annotated[object, Depends(_scheme)]) -> User:
    token = bearer(request)
    if not token:
        raise unauthorized("Log in first: send `Authorization: Bearer <token>` (POST /api/auth/login, "
                           "or a personal token from POST /api/tokens).")
    return await user_from_token(request, session, token)


async def get_writer(user: Annotated[User, Depends(get_current_user)]) -> User:
    return require_writer(user)


async def get_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    return require_admin(user)


CurrentUser = Annotated[User, Depends(get_current_user)]
WriterUser = Annotated[User, Depends(get_writer)]
AdminUser = Annotated[User, Depends(get_admin)]

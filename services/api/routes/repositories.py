from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.api import service
from services.api.auth import Role, audit, can_see
from services.api.deps import CurrentUser, SessionDep, SettingsDep, WriterUser
from services.api.schemas import Envelope, RepositoryCreate, RepositoryPublic
from shared.db.models import Repository
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/repositories", tags=["repositories"])


@router.post("", status_code=201, response_model=Envelope[RepositoryPublic])
async def create_repository(
    body: RepositoryCreate, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[RepositoryPublic]:
    """Register a local directory (`path`, admins only: it reads the server's disk) or clone a git repository
    (`url`, `branch`)."""
    if body.path and user.role != Role.ADMIN:
        raise PortsideError(ErrorCode.FORBIDDEN, "Only an admin may register a directory on the server; "
                                                 "give a git `url` instead.")
    repo = await service.register_repository(
        session, settings, path=body.path, url=body.url, branch=body.branch, name=body.name, owner_id=user.id
    )
    await audit(session, request, user, "repository_registered", f"repository:{repo.id}", body.path or body.url)
    await session.commit()
    return Envelope(data=RepositoryPublic.model_validate(repo))


@router.get("", response_model=Envelope[list[RepositoryPublic]])
async def list_repositories(user: CurrentUser, session: SessionDep) -> Envelope[list[RepositoryPublic]]:
    query = select(Repository).order_by(Repository.id)
    if not can_see(user, None):
        query = query.where(Repository.owner_id == user.id)
    repos = (await session.scalars(query)).all()
    return Envelope(data=[RepositoryPublic.model_validate(r) for r in repos])


@router.get("/{repo_id}", response_model=Envelope[RepositoryPublic])
async def get_repository(repo_id: int, user: CurrentUser, session: SessionDep) -> Envelope[RepositoryPublic]:
    return Envelope(data=RepositoryPublic.model_validate(await service.get_repository(session, repo_id, user)))

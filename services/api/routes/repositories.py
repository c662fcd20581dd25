from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.api import service
from services.api.auth import Role, audit, can_see
from services.api.deps import BusDep, CurrentUser, IdPath, SessionDep, SettingsDep, WriterUser
from services.api.schemas import Envelope, RepositoryCreate, RepositoryPublic
from shared.db.models import Repository
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/repositories", tags=["repositories"])


@router.post("", status_code=201, response_model=Envelope[RepositoryPublic])
async def create_repository(
    body: RepositoryCreate, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[RepositoryPublic]:
    """Register a local directory (`path`, admins only: it reads the server's disk) or clone a git repository
    (`url`, `branch`; a `file://` URL is a local directory too)."""
    local = bool(body.path) or (body.url or "").strip().lower().startswith("file:")
    if local and user.role != Role.ADMIN:
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
async def get_repository(repo_id: IdPath, user: CurrentUser, session: SessionDep) -> Envelope[RepositoryPublic]:
    return Envelope(data=RepositoryPublic.model_validate(await service.get_repository(session, repo_id, user)))


@router.post("/{repo_id}/pull", response_model=Envelope[RepositoryPublic])
async def pull_repository(
    repo_id: IdPath, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[RepositoryPublic]:
    """Bring a cloned repository to the newest commit of its branch (`git fetch --depth 1` and a reset, with the
    clone's limits; GIT_PULL_FAILED when git fails, INVALID_STATE while one of its deployments builds). A
    registered local directory has nothing to pull and is answered as it is."""
    repo = await service.pull_repository(session, settings, repo_id, user)
    await audit(session, request, user, "repository_pulled", f"repository:{repo.id}", repo.url)
    await session.commit()
    return Envelope(data=RepositoryPublic.model_validate(repo))


@router.delete("/{repo_id}", response_model=Envelope[dict])
async def delete_repository(
    repo_id: IdPath, request: Request, user: WriterUser, session: SessionDep, bus: BusDep, settings: SettingsDep
) -> Envelope[dict]:
    """Delete the repository, its deployments (containers, network, images and volumes) and, for a clone, its
    folder under PORTSIDE_HOME/repos; a registered local directory is left on disk. Refused with INVALID_STATE
    while a deployment is building, starting, running or stopping: stop it first."""
    await service.delete_repository(session, bus, settings, repo_id, user)
    await audit(session, request, user, "repository_deleted", f"repository:{repo_id}", None)
    await session.commit()
    return Envelope(data={"deleted": True})

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from services.api import service
from services.api.auth import Role, audit, can_see
from services.api.deps import BusDep, CurrentUser, IdPath, SessionDep, SettingsDep, WriterUser
from services.api.gitpush import hook_secret
from services.api.schemas import (
    Envelope,
    HookDeliveryPublic,
    HookPublic,
    RepositoryCreate,
    RepositoryPublic,
    RepositoryUpdate,
)
from shared.config import Settings
from shared.db.models import GitDelivery, Repository
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


@router.patch("/{repo_id}", response_model=Envelope[RepositoryPublic])
async def update_repository(
    repo_id: IdPath, body: RepositoryUpdate, request: Request, user: WriterUser, session: SessionDep
) -> Envelope[RepositoryPublic]:
    """Change a repository's settings: `preview_secrets` lets preview deployments have its secret variables."""
    repo = await service.get_repository(session, repo_id, user)
    if body.preview_secrets is not None:
        repo.preview_secrets = body.preview_secrets
    await audit(session, request, user, "repository_updated", f"repository:{repo.id}",
                f"preview_secrets={repo.preview_secrets}")
    await session.commit()
    return Envelope(data=RepositoryPublic.model_validate(repo))


async def _hook(session: SessionDep, settings: Settings, repo: Repository, rotate: bool) -> HookPublic:
    if repo.preview_of is not None:
        raise PortsideError(ErrorCode.INVALID_STATE, f"Repository {repo.id} is a preview of repository "
                                                     f"{repo.preview_of}; set the webhook up on that one.")
    secret = hook_secret(settings, repo, rotate=rotate)
    await session.commit()
    deliveries = (await session.scalars(
        select(GitDelivery).where(GitDelivery.repository_id == repo.id).order_by(GitDelivery.id.desc()).limit(20)
    )).all()
    return HookPublic(url=f"/api/hooks/git/{repo.id}", secret=secret,
                      deliveries=[HookDeliveryPublic.model_validate(d) for d in deliveries])


@router.get("/{repo_id}/hook", response_model=Envelope[HookPublic])
async def get_hook(
    repo_id: IdPath, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[HookPublic]:
    """The webhook to give the git host (GitHub, GitLab or Gitea; push and pull/merge request events, content type
    JSON) and its secret, made on first use; with the newest deliveries and what each did. Only those who may
    change the repository see the secret."""
    repo = await service.get_repository(session, repo_id, user)
    return Envelope(data=await _hook(session, settings, repo, rotate=False))


@router.post("/{repo_id}/hook", response_model=Envelope[HookPublic])
async def rotate_hook(
    repo_id: IdPath, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[HookPublic]:
    """Replace the hook secret with a new one (the old one stops working at once); update the git host's webhook."""
    repo = await service.get_repository(session, repo_id, user)
    await audit(session, request, user, "hook_secret_rotated", f"repository:{repo.id}", None)
    return Envelope(data=await _hook(session, settings, repo, rotate=True))

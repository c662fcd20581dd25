from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from services.api import service
from services.api.deps import SessionDep, SettingsDep
from services.api.schemas import Envelope, RepositoryCreate, RepositoryPublic
from shared.db.models import Repository

router = APIRouter(prefix="/api/repositories", tags=["repositories"])


@router.post("", status_code=201, response_model=Envelope[RepositoryPublic])
async def create_repository(
    body: RepositoryCreate, session: SessionDep, settings: SettingsDep
) -> Envelope[RepositoryPublic]:
    """Register a local directory (`path`) or clone a git repository (`url`, `branch`)."""
    repo = await service.register_repository(
        session, settings, path=body.path, url=body.url, branch=body.branch, name=body.name
    )
    return Envelope(data=RepositoryPublic.model_validate(repo))


@router.get("", response_model=Envelope[list[RepositoryPublic]])
async def list_repositories(session: SessionDep) -> Envelope[list[RepositoryPublic]]:
    repos = (await session.scalars(select(Repository).order_by(Repository.id))).all()
    return Envelope(data=[RepositoryPublic.model_validate(r) for r in repos])


@router.get("/{repo_id}", response_model=Envelope[RepositoryPublic])
async def get_repository(repo_id: int, session: SessionDep) -> Envelope[RepositoryPublic]:
    return Envelope(data=RepositoryPublic.model_validate(await service.get_repository(session, repo_id)))

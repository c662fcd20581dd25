"""A deployment's host names on the reverse proxy. Names are unique across deployments (a unique index decides);
saving applies the proxy's routes at once (shared.proxy rebuilds them from Postgres)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from services.api import service
from services.api.auth import audit
from services.api.deps import CurrentUser, IdPath, SessionDep, SettingsDep, WriterUser
from services.api.schemas import DomainsPublic, DomainsUpdate, Envelope
from shared import proxy
from shared.config import Settings
from shared.db.models import Deployment, DomainName
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/deployments", tags=["domains"])


async def _public(session: SessionDep, settings: Settings, deployment: Deployment) -> DomainsPublic:
    names = await proxy.domains_of(session, settings, deployment)
    return DomainsPublic(domains=names, urls=proxy.domain_urls(settings, names) if settings.proxy_on else [],
                         default_domain=proxy.default_domain(settings, deployment.id, deployment.repo_name))


def _taken(name: str) -> PortsideError:
    return PortsideError(ErrorCode.DOMAIN_TAKEN, f"{name} already routes to another deployment; remove it there "
                                                 "first or choose another name.")


async def _check_free(session: SessionDep, settings: Settings, deployment_id: int, names: list[str]) -> None:
    other = (await session.scalars(select(DomainName.name).where(
        DomainName.name.in_(names), DomainName.deployment_id != deployment_id))).first()
    if other:
        raise _taken(other)
    # Another deployment's default name (`<app>-<id>.<base>`) is taken too, though no row holds it.
    base = (settings.base_domain or "").lower().strip(".")
    for name in names:
        found = re.fullmatch(r".+-(\d+)\." + re.escape(base), name) if base else None
        owner = int(found.group(1)) if found else deployment_id
        if owner != deployment_id and await session.get(Deployment, owner) is not None:
            raise _taken(name)


@router.get("/{deployment_id}/domains", response_model=Envelope[DomainsPublic])
async def get_domains(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Envelope[DomainsPublic]:
    """The deployment's names (those set here, then the default `<app>-<id>.<PORTSIDE_BASE_DOMAIN>`) and URLs."""
    deployment = await service.get_deployment(session, deployment_id, user)
    return Envelope(data=await _public(session, settings, deployment))


@router.put("/{deployment_id}/domains", response_model=Envelope[DomainsPublic])
async def put_domains(
    deployment_id: IdPath, body: DomainsUpdate, request: Request, user: WriterUser, session: SessionDep,
    settings: SettingsDep,
) -> Envelope[DomainsPublic]:
    """Replace the deployment's names. 422 INVALID_DOMAIN for a name that is not a host name, 409 DOMAIN_TAKEN
    for one another deployment has. A running deployment answers on them at once (HTTPS; HTTP redirects)."""
    deployment = await service.get_deployment(session, deployment_id, user)
    names: list[str] = []
    for raw in body.domains:
        name = proxy.normalize_domain(raw)
        if name not in names:
            names.append(name)
    if len(names) > proxy.MAX_DOMAINS:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, f"At most {proxy.MAX_DOMAINS} names per deployment.")
    await _check_free(session, settings, deployment_id, names)
    await session.execute(delete(DomainName).where(DomainName.deployment_id == deployment_id))
    session.add_all([DomainName(deployment_id=deployment_id, name=name) for name in names])
    try:
        await session.flush()
    except IntegrityError as exc:  # another request took a name between the check and the insert
        await session.rollback()
        raise _taken(", ".join(names)) from exc
    await audit(session, request, user, "domains_changed", f"deployment:{deployment_id}", ", ".join(names) or "(none)")
    await session.commit()
    await proxy.apply(session, settings)
    return Envelope(data=await _public(session, settings, deployment))

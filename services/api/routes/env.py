"""A deployment's environment: runtime variables (and build arguments with `build`), secrets masked in every
answer and encrypted at rest. The runner hands them to the container; no generated file holds a value."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import delete, select

from services.api import service
from services.api.auth import audit
from services.api.deps import CurrentUser, SessionDep, SettingsDep, WriterUser
from services.api.schemas import Envelope, EnvPublic, EnvUpdate, EnvVarPublic
from shared.db.models import EnvVar
from shared.errors import ErrorCode, PortsideError
from shared.secrets import MASK, Cipher

router = APIRouter(prefix="/api/deployments", tags=["env"])

# Names that steer Portside's own compose run or the engine connection, not the app (the runner hands the
# values to `docker compose` through its environment).
_RESERVED_PREFIXES = ("PORTSIDE_", "DOCKER_", "COMPOSE_")
_RESERVED = frozenset({"PATH", "HOME"})


def _public(rows: list[EnvVar], cipher: Cipher) -> EnvPublic:
    return EnvPublic(variables=[
        EnvVarPublic(key=r.key, value=MASK if r.secret else cipher.decrypt(r.value_encrypted), secret=r.secret, build=r.build)
        for r in rows
    ])


async def _rows(session: SessionDep, deployment_id: int) -> list[EnvVar]:
    return list((await session.scalars(select(EnvVar).where(EnvVar.deployment_id == deployment_id).order_by(EnvVar.key))).all())


@router.get("/{deployment_id}/env", response_model=Envelope[EnvPublic])
async def get_env(deployment_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> Envelope[EnvPublic]:
    """The variables; a secret's value reads `********`."""
    await service.get_deployment(session, deployment_id, user)
    return Envelope(data=_public(await _rows(session, deployment_id), Cipher(settings)))


@router.put("/{deployment_id}/env", response_model=Envelope[EnvPublic])
async def put_env(
    deployment_id: int, body: EnvUpdate, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep
) -> Envelope[EnvPublic]:
    """Replace the whole set. To keep a secret without resending it, send it with no value (or the mask).
    Takes effect at the next deploy."""
    await service.get_deployment(session, deployment_id, user)
    cipher = Cipher(settings)
    old = {r.key: r for r in await _rows(session, deployment_id)}
    seen: set[str] = set()
    new: list[EnvVar] = []
    for var in body.variables:
        if var.key in seen:
            raise PortsideError(ErrorCode.VALIDATION_ERROR, f"`{var.key}` appears twice; give each variable once.")
        seen.add(var.key)
        if var.key.upper().startswith(_RESERVED_PREFIXES) or var.key.upper() in _RESERVED:
            raise PortsideError(ErrorCode.VALIDATION_ERROR, f"`{var.key}` is reserved for Portside; pick another name.")
        if var.value is None or (var.secret and var.value == MASK):
            kept = old.get(var.key)
            if kept is None:
                raise PortsideError(ErrorCode.VALIDATION_ERROR, f"`{var.key}` has no value yet; give one.")
            encrypted = kept.value_encrypted
        else:
            encrypted = cipher.encrypt(var.value)
        new.append(EnvVar(deployment_id=deployment_id, key=var.key, value_encrypted=encrypted, secret=var.secret, build=var.build))
    await session.execute(delete(EnvVar).where(EnvVar.deployment_id == deployment_id))
    session.add_all(new)
    # Names only: the audit trail must not become a place where values leak.
    await audit(session, request, user, "env_changed", f"deployment:{deployment_id}", ", ".join(sorted(seen)) or "(empty)")
    await session.commit()
    return Envelope(data=_public(sorted(new, key=lambda r: r.key), cipher))

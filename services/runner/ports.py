"""Host port allocation. A port is taken when an active deployment holds it in Postgres (a partial unique
index decides, not a read-then-write) or when the OS refuses to bind it."""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.db.models import Deployment
from shared.db.repository import claim_port
from shared.db.status import PORT_HOLDING
from shared.errors import ErrorCode, PortsideError
from shared.net import os_port_free

MAX_CANDIDATES = 200


def check_requested_port(settings: Settings, port: int) -> None:
    if not settings.port_range_start <= port <= settings.port_range_end:
        raise PortsideError(
            ErrorCode.PORT_OUT_OF_RANGE,
            f"Port {port} is outside Portside's range {settings.port_range_start}-{settings.port_range_end}; "
            "choose a port inside it or change PORTSIDE_PORT_RANGE_START/END.",
        )


async def held_ports(session: AsyncSession, except_deployment: int) -> set[int]:
    rows = await session.scalars(
        select(Deployment.assigned_port).where(
            Deployment.status.in_([s.value for s in PORT_HOLDING]),
            Deployment.assigned_port.is_not(None),
            Deployment.id != except_deployment,
        )
    )
    return {p for p in rows if p is not None}


async def allocate_port(
    session: AsyncSession,
    settings: Settings,
    deployment_id: int,
    *,
    requested: int | None = None,
    previous: int | None = None,
    previous_is_ours: bool = False,
    exclude: frozenset[int] = frozenset(),
) -> int:
    """Claim a host port for the deployment (the caller commits). A requested port is all-or-nothing;
    otherwise the previous port is preferred (stable URLs across redeploys), then random free ones."""
    if requested is not None:
        check_requested_port(settings, requested)
        busy = not (previous_is_ours and previous == requested) and not os_port_free(settings.bind_address, requested)
        if requested in exclude or busy or not await claim_port(
            session, deployment_id, requested
        ):
            raise PortsideError(
                ErrorCode.PORT_IN_USE,
                f"Port {requested} is already in use on this machine or by another deployment; "
                "choose another port or leave it empty to get a free one.",
            )
        return requested

    taken = await held_ports(session, deployment_id) | set(exclude)
    in_range = previous is not None and settings.port_range_start <= previous <= settings.port_range_end
    if previous is not None and previous_is_ours and in_range and previous not in taken and await claim_port(
        session, deployment_id, previous
    ):
        return previous
    candidates: list[int] = []
    if previous and previous not in taken and settings.port_range_start <= previous <= settings.port_range_end:
        candidates.append(previous)
    pool = range(settings.port_range_start, settings.port_range_end + 1)
    # Random order spreads concurrent allocators apart, so they rarely race for the same port.
    for port in random.sample(pool, min(len(pool), MAX_CANDIDATES)):
        if port not in taken:
            candidates.append(port)
    for port in candidates:
        if os_port_free(settings.bind_address, port) and await claim_port(session, deployment_id, port):
            return port
    raise PortsideError(
        ErrorCode.NO_FREE_PORT,
        f"No free port in {settings.port_range_start}-{settings.port_range_end}; stop unused deployments "
        "or widen PORTSIDE_PORT_RANGE_START/END.",
    )

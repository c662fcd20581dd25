"""Guarded transitions and port claims against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.runner.ports import allocate_port
from shared.config import Settings
from shared.db.models import Deployment, DeploymentEvent
from shared.db.repository import claim_port, transition
from shared.db.status import DeploymentStatus as S
from shared.errors import ErrorCode, PortsideError
from tests.integration.conftest import make_deployment


async def test_transition_applies_only_from_allowed_statuses_and_records_events(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    deployment_id = await make_deployment(sessions, f"/tmp/{uuid4()}", status="ready")
    async with sessions() as session:
        refused = await transition(session, deployment_id, S.RUNNING, "too early")
        assert not refused.applied and refused.current == "ready"
        queued = await transition(session, deployment_id, S.QUEUED, "deploy requested")
        assert queued.applied
        await session.commit()
        events = (
            await session.scalars(select(DeploymentEvent.status).where(DeploymentEvent.deployment_id == deployment_id))
        ).all()
    assert events == ["queued"]


async def test_a_crash_verdict_read_against_running_leaves_a_redeploy_that_reached_starting_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The reconciler and the watcher judge a `running` row, then act seconds later (a teardown, a settle wait):
    # by then a redeploy may be `starting`, which the state machine would let `crashed` overwrite.
    deployment_id = await make_deployment(sessions, f"/tmp/{uuid4()}", status="starting")
    async with sessions() as session:
        stale = await transition(session, deployment_id, S.CRASHED, "gone", error_code=ErrorCode.APP_CRASHED,
                                 only_from=frozenset({S.RUNNING}))
        assert not stale.applied and stale.current == "starting"
        fresh = await transition(session, deployment_id, S.CRASHED, "not ready", only_from=frozenset({S.STARTING}))
        assert fresh.applied
        await session.commit()


async def test_two_racing_transitions_only_one_wins(sessions: async_sessionmaker[AsyncSession]) -> None:
    deployment_id = await make_deployment(sessions, f"/tmp/{uuid4()}", status="stopped")

    async def attempt() -> bool:
        async with sessions() as session:
            result = await transition(session, deployment_id, S.QUEUED, "deploy")
            await session.commit()
            return result.applied

    results = await asyncio.gather(*(attempt() for _ in range(5)))
    assert results.count(True) == 1


async def test_claim_port_is_unique_among_active_deployments_only(sessions: async_sessionmaker[AsyncSession]) -> None:
    first = await make_deployment(sessions, f"/tmp/{uuid4()}", status="running")
    second = await make_deployment(sessions, f"/tmp/{uuid4()}", status="starting")
    async with sessions() as session:
        assert await claim_port(session, first, 23456)
        await session.commit()
        assert not await claim_port(session, second, 23456)
        # The refused claim rolled back only its savepoint: the session is still usable.
        await transition(session, first, S.STOPPING, "stop")
        await transition(session, first, S.STOPPED, "stopped")
        await session.commit()
        assert await claim_port(session, second, 23456)
        await session.commit()


async def test_fifty_concurrent_allocations_get_fifty_distinct_ports(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    narrow = settings.model_copy(
        update={"port_range_start": 31000, "port_range_end": 31080, "bind_address": "127.0.0.1"}
    )
    ids = [await make_deployment(sessions, f"/tmp/{uuid4()}", status="starting") for _ in range(50)]

    async def allocate(deployment_id: int) -> int:
        # Each its own transaction, as fifty runner tasks would do.
        for _ in range(20):
            async with sessions() as session:
                port = await allocate_port(session, narrow, deployment_id)
                try:
                    await session.commit()
                    return port
                except Exception:  # noqa: BLE001  a racing commit lost the unique index: try again
                    await session.rollback()
        raise AssertionError("no port after 20 tries")

    ports = await asyncio.gather(*(allocate(i) for i in ids))
    assert len(set(ports)) == 50
    assert all(31000 <= p <= 31080 for p in ports)
    async with sessions() as session:
        stored = (await session.scalars(select(Deployment.assigned_port).where(Deployment.id.in_(ids)))).all()
    assert sorted(stored) == sorted(ports)


async def test_requested_port_held_by_another_deployment_is_port_in_use(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    holder = await make_deployment(sessions, f"/tmp/{uuid4()}", status="running", assigned_port=32100)
    asker = await make_deployment(sessions, f"/tmp/{uuid4()}", status="starting")
    assert holder
    async with sessions() as session:
        try:
            await allocate_port(
                session, settings.model_copy(update={"bind_address": "127.0.0.1"}), asker, requested=32100
            )
        except PortsideError as exc:
            assert exc.code == ErrorCode.PORT_IN_USE
        else:
            raise AssertionError("expected PORT_IN_USE")

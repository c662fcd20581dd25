"""A message its handler can never process ends in a recorded outcome, not in silence: real nats-server and
PostgreSQL, a builder whose handlers raise on every delivery."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import service as api
from services.api.bus import Bus
from services.detector.handlers import register as register_detector
from shared.config import Settings
from shared.db.models import Deployment, DeploymentEvent
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import BuildFailed, BuildRequested, GenerateRequested
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext, make_context, subscribe
from tests.conftest import copy_fixture


@pytest.fixture
def quick(settings: Settings) -> Settings:
    # Three deliveries, 0.2 s then 0.4 s apart; the API would wait 20 s for an answer.
    return settings.model_copy(update={"max_deliver": 3, "retry_base_seconds": 0.2})


@pytest.fixture
async def broken_builder(quick: Settings) -> AsyncIterator[list[int]]:
    """A builder replica whose every handler raises; counts the deliveries it saw."""
    seen: list[int] = []

    async def always_fails(event: GenerateRequested | BuildRequested) -> None:
        seen.append(event.deployment_id)
        raise RuntimeError("disk on fire")

    detector = make_context("detector", quick)
    register_detector(detector)
    builder = make_context("builder", quick)
    subscribe(builder, {Subject.GENERATE_REQUESTED: always_fails, Subject.BUILD_REQUESTED: always_fails})
    contexts: list[WorkerContext] = [detector, builder]
    for ctx in contexts:
        await ctx.start()
    yield seen
    for ctx in contexts:
        await ctx.close()


@pytest.fixture
async def bus(quick: Settings) -> AsyncIterator[Bus]:
    bus = Bus(quick)
    await bus.start()
    yield bus
    await bus.stop()


async def test_a_handler_that_always_raises_ends_the_deployment_in_error_and_answers_the_api(
    broken_builder: list[int], bus: Bus, sessions: async_sessionmaker[AsyncSession], quick: Settings, tmp_path: Path
) -> None:
    root = copy_fixture("python-flask", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, quick, path=str(root), url=None, branch=None, name=None)
        started = time.monotonic()
        with pytest.raises(PortsideError) as info:
            await api.generate(session, bus, quick, repo.id, app_path="", stack=None, port=None, internal_port=None)
        waited = time.monotonic() - started
    # The waiting call gets the worker's failure, not WORKER_TIMEOUT after 20 s.
    assert info.value.code == ErrorCode.WORKER_FAILED, info.value
    assert "disk on fire" in info.value.message and "3 times" in info.value.message
    assert waited < quick.worker_timeout_seconds
    async with sessions() as session:
        deployment = await session.scalar(select(Deployment).where(Deployment.repository_id == repo.id))
        assert deployment is not None
        assert (deployment.status, deployment.error_code) == ("error", "WORKER_FAILED")
        assert "disk on fire" in (deployment.error_message or "")
        events = (await session.scalars(
            select(DeploymentEvent.status).where(DeploymentEvent.deployment_id == deployment.id)
        )).all()
        assert events[-1] == "error"
    assert broken_builder.count(deployment.id) == quick.max_deliver  # retried, then given up: no more deliveries

    # The build command of the same deployment: answered by build.failed with the code, like a failed build.
    _, fact = await bus.request(Subject.BUILD_REQUESTED, BuildRequested(deployment_id=deployment.id),
                                answers=(Subject.BUILD_FAILED, Subject.RUN_COMPLETED))
    assert isinstance(fact, BuildFailed) and fact.error_code == ErrorCode.WORKER_FAILED

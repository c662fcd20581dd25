"""Public events (portside.events.v1.*) against a real nats-server and PostgreSQL: every status change is
published exactly once through the outbox, with the build, crash and port facts it implies; a rolled-back
change publishes nothing, and a relay that publishes a row twice leaves one message on the stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import service as api
from shared.config import Settings
from shared.db.models import Deployment, OutboxEvent
from shared.db.repository import claim_port, transition
from shared.db.status import DeploymentStatus as S
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import BuildRequested
from shared.messaging.outbox import msg_id, relay_once
from shared.messaging.subjects import PublicSubject as P
from shared.messaging.subjects import Subject
from shared.worker import give_up, make_context
from tests.integration.conftest import make_deployment


@pytest.fixture
async def js(settings: Settings) -> AsyncIterator[JetStreamContext]:
    from shared.messaging.streams import ensure_streams, make_broker

    broker = make_broker(settings, "tests")
    await broker.connect()
    await ensure_streams(broker, settings)
    await broker.stop()
    client = await nats.connect(settings.require_nats_url())
    yield client.jetstream()
    await client.close()


async def events_of(js: JetStreamContext, settings: Settings, **match: object) -> list[tuple[str, dict]]:
    """Every message on the events stream whose payload has all of `match` (read from the start)."""
    info = await js.stream_info(settings.events_stream_name)
    found: list[tuple[str, dict]] = []
    if not info.state.messages:
        return found
    sub = await js.subscribe("portside.events.v1.>", ordered_consumer=True, deliver_policy="all")  # type: ignore[arg-type]
    try:
        for _ in range(info.state.messages):
            msg = await sub.next_msg(timeout=5)
            body = json.loads(msg.data)
            if all(body.get(k) == v for k, v in match.items()):
                found.append((msg.subject.removeprefix("portside.events.v1."), body))
    finally:
        await sub.unsubscribe()
    return found


async def flush(sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings) -> None:
    await relay_once(sessions, js, settings)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 0


async def test_every_status_change_is_one_public_event_with_its_build_and_port_facts(
    sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings, tmp_path: Path
) -> None:
    deployment_id = await make_deployment(sessions, str(tmp_path / "a"))
    steps = [S.QUEUED, S.BUILDING, S.BUILDING, S.STARTING, "port", S.RUNNING, S.RUNNING, S.STOPPING, S.STOPPED,
             S.QUEUED, S.BUILDING, S.BUILD_FAILED, S.RUNNING]
    applied_changes = 0
    for step in steps:
        async with sessions() as session:
            if step == "port":
                assert await claim_port(session, deployment_id, 23456)
            else:
                before = (await session.get(Deployment, deployment_id)).status  # type: ignore[union-attr]
                result = await transition(session, deployment_id, S(step), f"to {step}", build_seconds=None)
                applied_changes += result.applied and before != step
            await session.commit()
    await flush(sessions, js, settings)
    events = await events_of(js, settings, deployment_id=deployment_id)
    kinds = [kind for kind, _ in events]
    changes = [(b["previous_status"], b["status"]) for kind, b in events if kind == "deployment.status_changed"]
    # building -> building (a redelivered job) is a re-entry, running -> running and build_failed -> running are
    # refused: none of them is a change.
    assert len(changes) == applied_changes == 9
    assert changes == [("ready", "queued"), ("queued", "building"), ("building", "starting"), ("starting", "running"),
                       ("running", "stopping"), ("stopping", "stopped"), ("stopped", "queued"),
                       ("queued", "building"), ("building", "build_failed")]
    assert kinds.count("build.started") == 2
    [finished] = [b for kind, b in events if kind == "build.finished"]
    assert finished["succeeded"] is False and finished["duration_seconds"] is not None
    ports = [(kind, b["port"]) for kind, b in events if kind.startswith("port.")]
    # Claimed while starting, freed when stopped, held again by the redeploy (the row keeps it), freed by the failure.
    assert ports == [("port.assigned", 23456), ("port.freed", 23456), ("port.assigned", 23456), ("port.freed", 23456)]


async def test_a_rolled_back_change_publishes_nothing_and_a_repeated_publish_is_dropped(
    sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings, tmp_path: Path
) -> None:
    deployment_id = await make_deployment(sessions, str(tmp_path / "b"))
    async with sessions() as session:
        await transition(session, deployment_id, S.QUEUED, "deploy requested")
        await session.rollback()
    async with sessions() as session:
        await transition(session, deployment_id, S.QUEUED, "deploy requested")
        await session.commit()
        row = await session.scalar(select(OutboxEvent).order_by(OutboxEvent.id.desc()))
        assert row is not None
    # A relay that died after publishing but before deleting the row publishes it again: JetStream drops it.
    await js.publish(row.subject, json.dumps(row.payload).encode(), headers={"Nats-Msg-Id": msg_id(row.id)})
    await flush(sessions, js, settings)
    changes = await events_of(js, settings, deployment_id=deployment_id)
    assert [kind for kind, _ in changes] == ["deployment.status_changed"]


async def test_preflight_failure_and_a_worker_giving_up_each_publish_one_status_change(
    sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "c").mkdir()
    deployment_id = await make_deployment(sessions, str(tmp_path / "c"), status="ready")
    no_engine = settings.model_copy(update={"docker_host": f"unix://{tmp_path}/no-engine.sock"})
    async with sessions() as session:
        deployment = await session.get(Deployment, deployment_id)
        assert deployment is not None
        with pytest.raises(PortsideError) as info:
            await api._preflight_or_error(session, no_engine, deployment)
    assert info.value.code == ErrorCode.DOCKER_UNAVAILABLE

    other = await make_deployment(sessions, str(tmp_path / "d"), status="building")
    ctx = make_context("builder", settings)
    await ctx.start()
    try:
        await give_up(ctx, Subject.BUILD_REQUESTED, BuildRequested(deployment_id=other), ErrorCode.WORKER_FAILED,
                      "builder failed 5 times")
        # The process's own relay publishes it (woken by the commit's NOTIFY, or its next poll on a busy machine).
        deadline = time.monotonic() + 30
        while not await events_of(js, settings, deployment_id=other) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await ctx.close()
    await flush(sessions, js, settings)

    preflight = await events_of(js, settings, deployment_id=deployment_id)
    assert [(k, b["status"], b["error_code"]) for k, b in preflight] == [
        ("deployment.status_changed", "error", "DOCKER_UNAVAILABLE")]
    gave_up = await events_of(js, settings, deployment_id=other)
    assert [k for k, _ in gave_up] == ["deployment.status_changed", "build.finished"]
    assert gave_up[0][1]["status"] == "error" and gave_up[1][1]["error_code"] == "WORKER_FAILED"


async def test_repository_registration_is_published(
    sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "app.py").write_text("print('hi')\n")
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(tmp_path / "repo"), url=None, branch=None,
                                             name="evented")
    ctx = make_context("api", settings)
    await ctx.start()  # runs the process's outbox relay
    try:
        deadline = time.monotonic() + 30
        while not (found := await events_of(js, settings, repository_id=repo.id)) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await ctx.close()
    assert [(k, b["name"]) for k, b in found] == [(P.REPOSITORY_REGISTERED.short, "evented")]

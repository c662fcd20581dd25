"""The runner's own status changes (the reconciler and the Docker-events watcher) publish exactly one public
event each, with the crash's exit code: a real engine and real exited containers, with real NATS and
PostgreSQL. The whole system's path (deploy, `portside events`, webhooks over HTTP) is in test_events_api.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import anyio
import docker
import nats
import pytest
import yaml
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.builder.compose import render_compose
from services.runner import reconcile, service
from services.runner.engine import teardown
from services.runner.reconcile import reconcile_once
from services.runner.watcher import Died, handle_death
from shared.config import Settings
from shared.db.models import Deployment, OutboxEvent, Repository
from shared.db.repository import transition
from shared.db.session import make_engine, make_sessionmaker
from shared.db.status import DeploymentStatus as S
from shared.docker import Owner
from shared.docker.client import LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_MANAGED
from shared.docker.containers import list_containers
from shared.messaging.outbox import relay_once
from shared.worker import WorkerContext, make_context

COMPOSE_SERVICE = "com.docker.compose.service"


@pytest.fixture
def own(settings: Settings, tmp_path: Path) -> Settings:
    # An instance of its own: the reconciler removes what its instance runs without a row, and the engine is shared.
    return settings.model_copy(update={"instance": f"evt-{uuid4().hex[:8]}", "home": tmp_path / "home"})


@pytest.fixture
async def sessions(own: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(own.require_database_url(), application_name="portside-tests")
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def runner(own: Settings) -> AsyncIterator[WorkerContext]:
    ctx = make_context("runner", own)
    await ctx.start()
    yield ctx
    await ctx.close()


@pytest.fixture
def exited(engine: docker.DockerClient, own: Settings) -> Iterator:  # type: ignore[type-arg]
    """Makes an app container of a deployment that exited with `code`, labelled like Portside's."""
    made: list = []

    def make(deployment_id: int, code: int):  # type: ignore[no-untyped-def]
        container = engine.containers.run(
            "python:3.12-slim", ["python", "-c", f"raise SystemExit({code})"], detach=True,
            labels={LABEL_MANAGED: "true", LABEL_INSTANCE: own.instance, LABEL_DEPLOYMENT: str(deployment_id),
                    COMPOSE_SERVICE: "app"},
        )
        made.append(container)
        container.wait(timeout=60)
        return container

    yield make
    for container in made:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


async def running_deployment(
    sessions: async_sessionmaker[AsyncSession], path: Path, status: str = "running", **fields: object
) -> int:
    async with sessions() as session:
        repo = Repository(name="events", path=str(path))
        session.add(repo)
        await session.flush()
        deployment = Deployment(repository_id=repo.id, repo_name="events", status=status, app_service="app",
                                **fields)
        session.add(deployment)
        await session.commit()
        return deployment.id


async def published(own: Settings, sessions: async_sessionmaker[AsyncSession], deployment_id: int) -> list[dict]:
    client = await nats.connect(own.require_nats_url())
    js = client.jetstream()
    try:
        # Every staged event is on the stream once the outbox is empty. The runner's own relay may be publishing
        # right now, holding the lock, and then this relay_once sends nothing: wait for the rows to go.
        deadline = time.monotonic() + 60
        while True:
            await relay_once(sessions, js, own)
            async with sessions() as session:
                if not await session.scalar(select(func.count()).select_from(OutboxEvent)):
                    break
            assert time.monotonic() < deadline, "the outbox was not emptied"
            await asyncio.sleep(0.1)
        info = await js.stream_info(own.events_stream_name)
        sub = await js.subscribe("portside.events.v1.>", ordered_consumer=True, deliver_policy="all")  # type: ignore[arg-type]
        found = []
        for _ in range(info.state.messages):
            msg = await sub.next_msg(timeout=5)
            body = json.loads(msg.data)
            if body.get("deployment_id") == deployment_id:
                found.append({"event": msg.subject.removeprefix("portside.events.v1."), **body})
        await sub.unsubscribe()
        return found
    finally:
        await client.close()


async def test_the_reconciler_finding_an_exited_app_publishes_one_change_and_the_crash(
    runner: WorkerContext, sessions: async_sessionmaker[AsyncSession], own: Settings, exited, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    deployment_id = await running_deployment(sessions, tmp_path, assigned_port=39123)
    exited(deployment_id, 7)
    report = await reconcile_once(runner)
    assert report.crashed == [deployment_id]
    assert (await reconcile_once(runner)).crashed == []  # a second pass changes nothing, publishes nothing
    events = await published(own, sessions, deployment_id)
    assert [e["event"] for e in events] == ["deployment.status_changed", "deployment.crashed", "port.freed"]
    assert (events[0]["previous_status"], events[0]["status"]) == ("running", "crashed")
    assert events[1]["exit_code"] == 7 and events[2]["port"] == 39123
    await _forget(sessions, deployment_id)


async def test_a_start_that_became_running_while_the_engine_was_read_is_judged_on_the_next_pass(
    runner: WorkerContext, sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The engine is listed first (no container of this start yet: compose up comes later), then the start
    # passes its readiness wait and the row becomes `running`, all before the reconciler reads Postgres. That
    # listing says nothing about the running app: on a busy CI machine it was read as "gone" and crashed it.
    deployment_id = await running_deployment(sessions, tmp_path, status="starting")
    listed = reconcile._containers_by_deployment

    async def became_running() -> None:
        async with sessions() as session:
            assert (await transition(session, deployment_id, S.RUNNING, "the app answers")).applied
            await session.commit()

    def listing_while_it_starts(settings: Settings) -> dict:
        found = listed(settings)
        anyio.from_thread.run(became_running)
        return found

    monkeypatch.setattr(reconcile, "_containers_by_deployment", listing_while_it_starts)
    assert deployment_id not in (await reconcile_once(runner)).crashed
    async with sessions() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None and row.status == "running"
    monkeypatch.undo()
    # A pass that listed the engine while the row already said `running` judges it: no container is a crash.
    assert deployment_id in (await reconcile_once(runner)).crashed
    await _forget(sessions, deployment_id)


async def test_the_watcher_seeing_the_app_die_publishes_one_change_and_the_crash(
    runner: WorkerContext, sessions: async_sessionmaker[AsyncSession], own: Settings, exited, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    deployment_id = await running_deployment(sessions, tmp_path)
    container = exited(deployment_id, 3)
    async with sessions() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None
        row.container_id = container.id
        await session.commit()
    started = time.monotonic()
    await handle_death(runner, Died(deployment_id, container.id, "app", 3))
    await handle_death(runner, Died(deployment_id, container.id, "app", 3))  # Docker says it twice: one change
    assert time.monotonic() - started < 120
    events = await published(own, sessions, deployment_id)
    assert [e["event"] for e in events] == ["deployment.status_changed", "deployment.crashed"]
    assert events[1]["exit_code"] == 3 and events[1]["error_code"] == "APP_CRASHED"
    await _forget(sessions, deployment_id)


async def test_a_stop_that_came_while_the_app_started_leaves_nothing_running(
    runner: WorkerContext, sessions: async_sessionmaker[AsyncSession], own: Settings, engine: docker.DockerClient,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stop takes the deployment down at once, but the start's `compose up` may run after that teardown: the
    # start then finishes on an app that its status says is stopped, and nothing else would remove it.
    source = tmp_path / "app"
    (source / ".deployment").mkdir(parents=True)
    deployment_id = await running_deployment(sessions, source, status="building", image_tag="python:3.12-slim")
    compose = yaml.safe_load(render_compose(owner=Owner.of(own, deployment_id), repo_name="race", port=8000,
                                            services=[]))
    compose["services"]["app"]["command"] = ["python", "-m", "http.server", "8000"]
    async with sessions() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None
        row.compose_content = yaml.safe_dump(compose)
        await session.commit()
    started = service._start

    async def stopped_meanwhile(ctx: WorkerContext, plan: service.StartPlan) -> tuple[service.StartPlan, str]:
        done = await started(ctx, plan)
        async with sessions() as session:  # what the stop handler does, its teardown done before `up` ran
            assert (await transition(session, deployment_id, S.STOPPING, "stopping")).applied
            assert (await transition(session, deployment_id, S.STOPPED, "stopped; port released")).applied
            await session.commit()
        return done

    monkeypatch.setattr(service, "_start", stopped_meanwhile)
    try:
        await service.run(runner, deployment_id, "corr-stop-while-starting")
        filters = {"label": [f"{LABEL_INSTANCE}={own.instance}", f"{LABEL_DEPLOYMENT}={deployment_id}"]}
        assert list_containers(engine, filters) == []
        async with sessions() as session:
            row = await session.get(Deployment, deployment_id)
            assert row is not None and row.status == "stopped"
        events = await published(own, sessions, deployment_id)
        assert [(e["previous_status"], e["status"]) for e in events if e["event"] == "deployment.status_changed"] == [
            ("building", "starting"), ("starting", "stopping"), ("stopping", "stopped")]
    finally:
        teardown(own, deployment_id, False)
        await _forget(sessions, deployment_id)


async def _forget(sessions: async_sessionmaker[AsyncSession], deployment_id: int) -> None:
    async with sessions() as session:
        row = await session.get(Deployment, deployment_id)
        if row is not None:
            await session.execute(delete(Repository).where(Repository.id == row.repository_id))
        await session.commit()

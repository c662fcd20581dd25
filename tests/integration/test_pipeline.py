"""The API's commands reach real workers over a real nats-server, which write to a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import yaml
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import gitpush
from services.api import service as api
from services.api.bus import Bus
from services.builder.handlers import register as register_builder
from services.detector.handlers import register as register_detector
from shared.config import Settings
from shared.db.models import Deployment, DetectionRecord
from shared.db.repository import load_detection
from shared.db.status import DeploymentStatus as S
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import RunCompleted, RunRequested
from shared.messaging.subjects import Subject
from shared.net import os_port_free
from shared.worker import WorkerContext, make_context
from tests.conftest import copy_fixture


@pytest.fixture
async def workers(settings: Settings) -> AsyncIterator[list[WorkerContext]]:
    # Two detector replicas share one durable consumer; one builder.
    contexts = []
    for name, register in (
        ("detector", register_detector),
        ("detector", register_detector),
        ("builder", register_builder),
    ):
        ctx = make_context(name, settings)
        register(ctx)
        await ctx.start()
        contexts.append(ctx)
    yield contexts
    for ctx in contexts:
        await ctx.close()


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    bus = Bus(settings)
    await bus.start()
    yield bus
    await bus.stop()


async def test_detect_and_generate_through_workers_store_results(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    root = copy_fixture("python-flask", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        detection = await api.detect(session, bus, repo.id, "")
        assert (detection.stack, detection.framework) == ("python", "flask")
        deployment = await api.generate(
            session, bus, settings, repo.id, app_path="", stack=None, port=None, internal_port=None
        )
    assert deployment.status == S.READY
    assert deployment.stack == "python" and deployment.internal_port == 8000
    assert deployment.dockerfile_content and "FROM python:" in deployment.dockerfile_content
    saved = root / ".deployment"
    assert (saved / "Dockerfile").read_text() == deployment.dockerfile_content
    assert (saved / "docker-compose.yml").read_text() == deployment.compose_content
    assert (saved / ".dockerignore").is_file()


async def test_generate_writes_resource_limits_into_compose(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    root = copy_fixture("node-express", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        deployment = await api.generate(session, bus, settings, repo.id, app_path="", stack=None, port=None,
                                        internal_port=None, cpu_limit=0.5, memory_limit="256m")
    limits = yaml.safe_load(deployment.compose_content or "")["services"]["app"]["deploy"]["resources"]["limits"]
    assert limits == {"cpus": "0.5", "memory": "256m"}


async def test_a_detection_stored_before_its_stack_was_planned_by_the_provider_is_detected_again(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    # Rows written before the Node provider planned (schema 1: no plan field; schema 2: Node without a plan) must
    # still generate: they read as missing, the API detects again, and the builder renders the new plan.
    root = copy_fixture("node-express", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        old = (await api.detect(session, bus, repo.id, "")).model_dump(mode="json")
        assert old["plan"] is not None
        for version in (1, 2):
            await session.execute(update(DetectionRecord).where(DetectionRecord.repository_id == repo.id)
                                  .values(schema_version=version, result={**old, "plan": None}))
            await session.commit()
            deployment = await api.generate(session, bus, settings, repo.id, app_path="", stack=None, port=None,
                                            internal_port=None)
            assert deployment.status == S.READY and deployment.stack == "node"
            assert deployment.dockerfile_content and "FROM node:" in deployment.dockerfile_content
            stored = await load_detection(session, repo.id, "")
            assert stored is not None and stored.plan is not None


async def test_a_push_that_changes_the_detected_stack_generates_the_new_stack_again(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    # The deployment's stack is the one it was generated for; a push that turns the app into another stack
    # generates it again for the new one (gitpush's _regenerate), not refused as a user's `stack` override.
    root = copy_fixture("node-express", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        deployment = await api.generate(session, bus, settings, repo.id, app_path="", stack=None, port=None,
                                        internal_port=None)
        assert deployment.status == S.READY and deployment.stack == "node"
        shutil.rmtree(root)
        shutil.copytree(copy_fixture("python-flask", tmp_path / "next"), root)
        assert (await api.detect(session, bus, repo.id, "")).stack == "python"
        await gitpush._regenerate(session, bus, deployment, "push: the detected stack changed", "python")
        assert deployment.status == S.READY and deployment.stack == "python", deployment.error_message
        assert deployment.dockerfile_content and "FROM python:" in deployment.dockerfile_content


async def test_replicas_share_one_durable_consumer_and_answer_every_request(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    repos = []
    async with sessions() as session:
        for i in range(8):
            root = copy_fixture("node-express", tmp_path / str(i))
            repos.append(
                (await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)).id
            )

    async def one(repo_id: int) -> str:
        async with sessions() as session:
            return (await api.detect(session, bus, repo_id, "")).stack

    assert await asyncio.gather(*(one(r) for r in repos)) == ["node"] * 8
    js = bus.broker.config.connection_state.stream
    consumers = {c.name for c in await js.consumers_info(settings.stream_name)}
    assert "detector" in consumers
    assert not any(name.startswith("detector") and name != "detector" for name in consumers)


async def test_generate_for_unsupported_stack_fails_with_code_and_error_status(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    root = copy_fixture("python-flask", tmp_path)
    async with sessions() as session:
        repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
        with pytest.raises(PortsideError) as info:
            await api.generate(
                session, bus, settings, repo.id, app_path="", stack="cobol", port=None, internal_port=None
            )
        assert info.value.code == ErrorCode.UNSUPPORTED_STACK
        row = (await session.execute(Deployment.__table__.select().where(Deployment.repository_id == repo.id))).one()
        assert row.status == "error" and row.error_code == "UNSUPPORTED_STACK"
        # A stack Portside plans, but not the one detected: the provider's plan is the detected stack's.
        with pytest.raises(PortsideError) as info:
            await api.generate(
                session, bus, settings, repo.id, app_path="", stack="node", port=None, internal_port=None
            )
        assert info.value.code == ErrorCode.UNSUPPORTED_STACK and "detected a python app" in info.value.message


async def test_generate_port_is_the_host_port_refused_when_it_cannot_be_had(
    workers: list[WorkerContext],
    bus: Bus,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    root = copy_fixture("python-flask", tmp_path)
    with socket.socket() as holder:
        holder.bind((settings.bind_address, 0))
        holder.listen()
        held = holder.getsockname()[1]
        wide = settings.model_copy(update={"port_range_start": 1024, "port_range_end": 65535})
        async with sessions() as session:
            repo = await api.register_repository(session, settings, path=str(root), url=None, branch=None, name=None)
            for port, code, where in ((held, ErrorCode.PORT_IN_USE, wide), (80, ErrorCode.PORT_OUT_OF_RANGE, settings)):
                with pytest.raises(PortsideError) as info:
                    await api.generate(
                        session, bus, where, repo.id, app_path="", stack=None, port=port, internal_port=None
                    )
                assert info.value.code == code
            # Nothing half-made: a refused port leaves no deployment behind.
            assert (
                await session.execute(select(Deployment).where(Deployment.repository_id == repo.id))
            ).first() is None
            free = next(
                p
                for p in range(settings.port_range_end, settings.port_range_start, -1)
                if os_port_free(settings.bind_address, p)
            )
            deployment = await api.generate(
                session, bus, settings, repo.id, app_path="", stack=None, port=free, internal_port=5001
            )
    assert (deployment.requested_port, deployment.internal_port) == (free, 5001)
    assert "5001" in (deployment.compose_content or "")


async def test_request_without_a_worker_times_out_with_worker_timeout(bus: Bus) -> None:
    with pytest.raises(PortsideError) as info:
        await bus.request(
            Subject.RUN_REQUESTED, RunRequested(deployment_id=999_999), answers=(Subject.RUN_COMPLETED,), timeout=1
        )
    assert info.value.code == ErrorCode.WORKER_TIMEOUT


async def test_register_repository_refuses_relative_and_missing_paths(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessions() as session:
        for path, code in (
            ("relative/dir", ErrorCode.INVALID_REPOSITORY),
            ("/does/not/exist", ErrorCode.REPO_NOT_FOUND),
        ):
            with pytest.raises(PortsideError) as info:
                await api.register_repository(session, settings, path=path, url=None, branch=None, name=None)
            assert info.value.code == code


async def test_register_repository_clones_a_git_url_with_real_git(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    origin = copy_fixture("node-express", tmp_path, git=True)
    async with sessions() as session:
        repo = await api.register_repository(
            session, settings, path=None, url=f"file://{origin}", branch="main", name=None
        )
        assert Path(repo.path).is_relative_to(settings.repos_dir)
        assert (Path(repo.path) / "package.json").read_text() == (origin / "package.json").read_text()
        with pytest.raises(PortsideError) as info:
            await api.register_repository(
                session, settings, path=None, url=f"file://{origin}", branch="nope", name=None
            )
        assert info.value.code == ErrorCode.GIT_CLONE_FAILED


async def test_the_apis_fact_subscriptions_never_answer_a_workers_publish(bus: Bus, settings: Settings) -> None:
    # A worker publishes a fact to JetStream as a request: the stream's ack is the one reply it may get. The API's
    # core subscription on the same subject sees that reply subject too; an answer from it, when it came before
    # the ack, failed the worker's job after its work was done (json.loads of an empty body), and the job ran again.
    client = await nats.connect(settings.require_nats_url())
    try:
        inbox = client.new_inbox()
        replies = await client.subscribe(inbox)
        payload = RunCompleted(deployment_id=999_998, container_id="c", port=20000, url="http://x").model_dump_json()
        await client.publish(Subject.RUN_COMPLETED.value, payload.encode(), reply=inbox)
        await client.flush()
        answers = []
        with contextlib.suppress(nats.errors.TimeoutError):
            while True:
                answers.append((await replies.next_msg(timeout=2)).data)
    finally:
        await client.close()
    assert [json.loads(a)["stream"] for a in answers] == [settings.stream_name], answers

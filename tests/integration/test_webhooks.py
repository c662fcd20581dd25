"""Outgoing webhooks against receivers on loopback (PORTSIDE_ALLOW_PRIVATE_NETWORKS=true), with a real
nats-server and PostgreSQL: logstream's deliverer consumes the public stream, signs each body, retries a 500
with growing delays, gives up after PORTSIDE_WEBHOOK_MAX_ATTEMPTS and records it; a receiver that hangs
holds up neither the events nor another webhook's deliveries; a webhook sees only what its user may see, a
deleted deployment included."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.logstream.webhooks import Deliverer
from services.runner import service as runner
from shared.config import Settings
from shared.db.models import Deployment, User, Webhook, WebhookDelivery
from shared.db.repository import transition
from shared.db.status import DeploymentStatus as S
from shared.secrets import Cipher
from shared.webhooks import check_webhook_url
from shared.worker import WorkerContext, make_context
from tests.integration.conftest import make_deployment
from tests.receivers import Receivers

SECRET = "a-secret-of-sixteen-or-more"


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers() as made:
        yield made


@pytest.fixture
def hooks_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={
        "home": tmp_path / "home", "allow_private_networks": True, "webhook_max_attempts": 3,
        "webhook_retry_base_seconds": 0.3, "webhook_timeout_seconds": 20,
    })


@pytest.fixture
async def deliverer(hooks_settings: Settings) -> AsyncIterator[WorkerContext]:
    ctx = make_context("logstream", hooks_settings)
    webhooks = Deliverer(ctx)
    webhooks.register()
    await ctx.start()  # the broker (webhook consumer) and this process's outbox relay
    webhooks.start()
    yield ctx
    await webhooks.stop()
    await ctx.close()


async def add_user(sessions: async_sessionmaker[AsyncSession], email: str, role: str = "member") -> int:
    async with sessions() as session:
        user = User(email=email, password_hash="-", role=role)
        session.add(user)
        await session.commit()
        return user.id


async def add_webhook(sessions: async_sessionmaker[AsyncSession], settings: Settings, owner: int, url: str,
                      events: list[str]) -> int:
    async with sessions() as session:
        hook = Webhook(owner_id=owner, url=check_webhook_url(url, settings), events=events,
                       secret_encrypted=Cipher(settings).encrypt(SECRET))
        session.add(hook)
        await session.commit()
        return hook.id


async def deliveries(sessions: async_sessionmaker[AsyncSession], webhook_id: int) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list((await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id).order_by(WebhookDelivery.id)
        )).all())


async def wait_until(check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def change(sessions: async_sessionmaker[AsyncSession], deployment_id: int, *steps: S) -> None:
    for step in steps:
        async with sessions() as session:
            assert (await transition(session, deployment_id, step, f"to {step}")).applied
            await session.commit()


@pytest.fixture
async def clean(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    yield
    async with sessions() as session:
        await session.execute(delete(Webhook))
        await session.execute(delete(User))
        await session.commit()


async def test_a_delivery_is_signed_and_sent_once_per_wanted_event(
    deliverer: WorkerContext, receivers: Receivers, sessions: async_sessionmaker[AsyncSession],
    hooks_settings: Settings, tmp_path: Path, clean: None,
) -> None:
    owner = await add_user(sessions, "hooks-owner@portside.test")
    receiver = receivers.new()
    hook = await add_webhook(sessions, hooks_settings, owner, receiver.url, ["deployment.status_changed"])
    deployment_id = await make_deployment(sessions, str(tmp_path / "a"), owner_id=owner)
    await change(sessions, deployment_id, S.QUEUED, S.BUILDING)

    async def two() -> bool:
        return len([d for d in await deliveries(sessions, hook) if d.status == "delivered"]) == 2

    await wait_until(two)
    assert len(receiver.seen) == 2  # build.started was not asked for
    for _, headers, body in receiver.seen:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Portside-Signature"], expected)
        assert abs(int(headers["X-Portside-Timestamp"]) - time.time()) < 60
        event = json.loads(body)
        assert event["subject"] == "portside.events.v1.deployment.status_changed"
        assert event["deployment_id"] == deployment_id and event["payload"]["deployment_id"] == deployment_id
    assert [json.loads(b)["payload"]["status"] for _, _, b in receiver.seen] == ["queued", "building"]


async def test_a_failing_receiver_is_retried_with_backoff_then_given_up_and_recorded(
    deliverer: WorkerContext, receivers: Receivers, sessions: async_sessionmaker[AsyncSession],
    hooks_settings: Settings, tmp_path: Path, clean: None,
) -> None:
    owner = await add_user(sessions, "hooks-500@portside.test")
    receiver = receivers.new(status=500)
    hook = await add_webhook(sessions, hooks_settings, owner, receiver.url, ["*"])
    deployment_id = await make_deployment(sessions, str(tmp_path / "b"), owner_id=owner)
    await change(sessions, deployment_id, S.QUEUED)

    async def gave_up() -> bool:
        rows = await deliveries(sessions, hook)
        return bool(rows) and rows[0].status == "failed"

    await wait_until(gave_up)
    [row] = await deliveries(sessions, hook)
    assert row.attempts == 3 and row.last_status_code == 500
    assert row.last_error is not None and row.last_error.startswith("gave up after 3 attempts")
    times = [t for t, _, _ in receiver.seen]
    assert len(times) == 3  # and no fourth
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Each wait at least its backoff: 0.3 s, then 0.6 s (base, then twice the base; the unit test has the schedule).
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6
    await asyncio.sleep(1.5)
    assert len(receiver.seen) == 3


async def test_a_receiver_that_hangs_holds_up_neither_events_nor_other_webhooks(
    deliverer: WorkerContext, receivers: Receivers, sessions: async_sessionmaker[AsyncSession],
    hooks_settings: Settings, tmp_path: Path, clean: None,
) -> None:
    owner = await add_user(sessions, "hooks-slow@portside.test")
    slow = receivers.new()
    slow.hold.clear()
    fast = receivers.new()
    slow_hook = await add_webhook(sessions, hooks_settings, owner, slow.url, ["*"])
    fast_hook = await add_webhook(sessions, hooks_settings, owner, fast.url, ["*"])
    deployment_id = await make_deployment(sessions, str(tmp_path / "c"), owner_id=owner)
    # A whole deploy's worth of changes while the slow receiver holds every request it gets.
    await change(sessions, deployment_id, S.QUEUED, S.BUILDING, S.STARTING, S.RUNNING, S.STOPPING, S.STOPPED)
    wanted = 6 + 1  # six status changes and build.started (a successful build.finished is the builder's)

    async def fast_got_all() -> bool:
        return len([d for d in await deliveries(sessions, fast_hook) if d.status == "delivered"]) == wanted

    await wait_until(fast_got_all)
    pending = [d for d in await deliveries(sessions, slow_hook) if d.status == "pending"]
    assert len(pending) == wanted and slow.seen  # the slow one is still waiting on its receiver
    slow.hold.set()

    async def slow_got_all() -> bool:
        return len([d for d in await deliveries(sessions, slow_hook) if d.status == "delivered"]) == wanted

    await wait_until(slow_got_all)


async def test_a_webhook_gets_only_what_its_user_may_see(
    deliverer: WorkerContext, receivers: Receivers, sessions: async_sessionmaker[AsyncSession],
    hooks_settings: Settings, tmp_path: Path, clean: None,
) -> None:
    owner = await add_user(sessions, "hooks-mine@portside.test")
    other = await add_user(sessions, "hooks-other@portside.test")
    viewer = await add_user(sessions, "hooks-viewer@portside.test", role="viewer")
    mine, theirs, sees_all = receivers.new(), receivers.new(), receivers.new()
    await add_webhook(sessions, hooks_settings, owner, mine.url, ["*"])
    other_hook = await add_webhook(sessions, hooks_settings, other, theirs.url, ["*"])
    viewer_hook = await add_webhook(sessions, hooks_settings, viewer, sees_all.url, ["deployment.status_changed"])
    deployment_id = await make_deployment(sessions, str(tmp_path / "d"), owner_id=owner)
    await change(sessions, deployment_id, S.QUEUED)

    async def viewer_got_it() -> bool:
        return any(d.status == "delivered" for d in await deliveries(sessions, viewer_hook))

    async def owner_got_it() -> bool:
        return len(mine.seen) == 1

    await wait_until(viewer_got_it)
    await wait_until(owner_got_it)
    assert await deliveries(sessions, other_hook) == [] and theirs.seen == []


async def test_a_deleted_deployment_is_one_event_for_its_owner_and_nobody_else(
    deliverer: WorkerContext, receivers: Receivers, sessions: async_sessionmaker[AsyncSession],
    hooks_settings: Settings, tmp_path: Path, clean: None,
) -> None:
    owner = await add_user(sessions, "hooks-deleted@portside.test")
    other = await add_user(sessions, "hooks-deleted-other@portside.test")
    mine, theirs = receivers.new(), receivers.new()
    hook = await add_webhook(sessions, hooks_settings, owner, mine.url, ["deployment.deleted"])
    other_hook = await add_webhook(sessions, hooks_settings, other, theirs.url, ["*"])
    deployment_id = await make_deployment(sessions, str(tmp_path / "gone"), owner_id=owner)
    async with sessions() as session:
        repository_id = (await session.get(Deployment, deployment_id)).repository_id  # type: ignore[union-attr]
    # The runner's delete, as the API's DELETE asks for it, twice (a redelivered command); no engine to tear down
    # here, so the containers part finds nothing and the row, the logs and the event are what is checked.
    no_engine = deliverer.settings.model_copy(update={"docker_host": f"unix://{tmp_path}/no-engine.sock"})
    runner_ctx = make_context("runner", no_engine)
    await runner_ctx.start()
    try:
        await runner.delete(runner_ctx, deployment_id, True, "corr-delete")
        await runner.delete(runner_ctx, deployment_id, True, "corr-delete")
    finally:
        await runner_ctx.close()
    async with sessions() as session:
        assert await session.get(Deployment, deployment_id) is None

    async def delivered() -> bool:
        return any(d.status == "delivered" for d in await deliveries(sessions, hook))

    await wait_until(delivered)
    await asyncio.sleep(1.5)  # a second event, had the redelivered delete published one, would be here by now
    [(_, headers, body)] = mine.seen
    assert headers["X-Portside-Event"] == "deployment.deleted"
    event = json.loads(body)
    assert event["subject"] == "portside.events.v1.deployment.deleted" and event["deployment_id"] == deployment_id
    assert event["payload"] | {"event_id": "", "occurred_at": ""} == {
        "deployment_id": deployment_id, "repository_id": repository_id, "repo_name": "demo", "owner_id": owner,
        "purged": True, "schema_version": 1, "event_id": "", "occurred_at": "",
    }
    # The row is gone, yet the event still knows whose it was: another member's webhook gets nothing.
    assert await deliveries(sessions, other_hook) == [] and theirs.seen == []

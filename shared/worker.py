"""What every worker process shares: settings, broker, database sessions, the one wrapper every message
handler runs in (`subscribe`), and the FastStream app that runs them. A worker's main.py is
`run_worker("builder", register)`; its handlers get a WorkerContext."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from faststream import FastStream
from faststream.nats import NatsBroker, NatsMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import metrics
from shared.config import Settings, get_settings
from shared.db.repository import transition
from shared.db.session import make_engine, make_sessionmaker
from shared.db.status import DeploymentStatus
from shared.errors import ErrorCode, PortsideError
from shared.logs import configure_logging, job_context
from shared.messaging.contract import ROUTE, Service, consumed_by
from shared.messaging.events import Event, Failure, LogLine
from shared.messaging.outbox import start_relay, stop_relay
from shared.messaging.streams import (
    ensure_streams,
    in_progress,
    make_broker,
    on_subject,
    publish,
    publish_log,
    worker_subscriber,
)
from shared.messaging.subjects import Subject
from shared.observe import Readiness, serve_observe

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    service: Service
    settings: Settings
    broker: NatsBroker
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    relay: asyncio.Task[None] | None = None

    async def publish(self, subject: Subject, event: Event) -> None:
        await publish(self.broker, self.settings, subject, event)

    async def log(
        self,
        deployment_id: int,
        line: str,
        source: Literal["build", "app", "system"] = "system",
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        await publish_log(
            self.broker,
            self.settings,
            LogLine(deployment_id=deployment_id, source=source, line=line, step=step, total_steps=total_steps),
        )

    def readiness(self, docker: bool) -> Readiness:
        """What this worker's /readyz checks (the engine only where it uses one) and the lag of its consumer."""
        return Readiness(self.settings, self.engine, self.broker, docker=docker, consumers=(self.service,))

    async def start(self) -> None:
        await self.broker.connect()
        await ensure_streams(self.broker, self.settings)
        await self.broker.start()
        self.relay = start_relay(self.engine, self.broker, self.settings)

    async def close(self) -> None:
        await stop_relay(self.relay)
        await self.broker.stop()
        await self.engine.dispose()


Handler = Callable[[Any], Awaitable[None]]


def retry_delay(settings: Settings, delivery: int) -> float:
    """Back off between deliveries: base, 2x base, 4x base, ... capped at 30 s."""
    return min(settings.retry_base_seconds * 2 ** (delivery - 1), 30.0)


def subscribe(ctx: WorkerContext, handlers: dict[Subject, Handler], max_workers: int = 1) -> None:
    """Subscribe a worker's handlers (one per subject it consumes, as the contract table says) on its one
    durable consumer, each run inside the same wrapper: the payload is parsed by the table's model, JetStream
    is told the job is alive while it runs, and a handler that raises is retried with backoff. On the last
    delivery the failure becomes an outcome, never silence: the deployment ends `error` with the code and the
    reason, the command's `fails_with` fact is published (a waiting API call answers at once), and the message
    is acknowledged."""
    service = ctx.service
    subjects = consumed_by(service)
    if set(handlers) != set(subjects):
        raise ValueError(
            f"{service} must handle exactly {sorted(subjects)} (the contract table), got {sorted(handlers)}"
        )
    subscriber = worker_subscriber(ctx.broker, ctx.settings, service, subjects, max_workers=max_workers)
    heartbeat = ctx.settings.ack_wait_seconds / 3
    for subject, handler in handlers.items():
        subscriber(filter=on_subject(subject))(_wrapped(ctx, subject, handler, heartbeat))


def _wrapped(
    ctx: WorkerContext, subject: Subject, handler: Handler, heartbeat: float
) -> Callable[..., Awaitable[None]]:
    route = ROUTE[subject]

    async def on_message(body: dict, message: NatsMessage) -> None:
        try:
            # Deploy-stream payloads are all Events (the contract test checks it).
            event = cast(Event, route.payload.model_validate(body))
        except ValidationError as exc:
            # No retry can fix a payload that breaks the contract; say so and drop it for good.
            log.error(
                "%s: dropping a %s message that is not a %s: %s", ctx.service, subject, route.payload.__name__, exc
            )
            metrics.JOBS.labels(ctx.service, subject.value, "rejected").inc()
            await message.reject()
            return
        with job_context(event.correlation_id, getattr(event, "deployment_id", None)):
            await _handle(event, message)

    async def _handle(event: Any, message: NatsMessage) -> None:
        delivery = message.raw_message.metadata.num_delivered or 1
        started = time.monotonic()
        try:
            async with in_progress(message, heartbeat):
                await handler(event)
            metrics.JOBS.labels(ctx.service, subject.value, "ok").inc()
            # One line per job, carrying its ids like every line inside it: a log shipper can follow a deployment.
            log.info("%s: %s handled in %.2f s (delivery %d)", ctx.service, subject.value,
                     time.monotonic() - started, delivery)
        except Exception as exc:  # every failure ends below in a retry or in a recorded outcome
            reason = exc.message if isinstance(exc, PortsideError) else f"{exc.__class__.__name__}: {exc}"
            if delivery < ctx.settings.max_deliver:
                delay = retry_delay(ctx.settings, delivery)
                log.warning("%s: %s failed on delivery %d of %d (%s); retrying in %.1f s", ctx.service, subject,
                            delivery, ctx.settings.max_deliver, reason, delay, exc_info=True)
                metrics.JOBS.labels(ctx.service, subject.value, "retried").inc()
                await message.nack(delay=delay)
                return
            log.exception("%s: %s failed on its last delivery (%d); giving up: %s", ctx.service, subject, delivery,
                          reason)
            metrics.JOBS.labels(ctx.service, subject.value, "failed").inc()
            code = exc.code if isinstance(exc, PortsideError) else ErrorCode.WORKER_FAILED
            await give_up(ctx, subject, event, code, f"{ctx.service} failed on {subject.value} "
                          f"{delivery} times; last error: {reason}")
        finally:
            metrics.JOB_SECONDS.labels(metrics.stage_of(subject)).observe(time.monotonic() - started)

    on_message.__name__ = on_message.__qualname__ = f"on_{subject.name.lower()}"
    return on_message


async def give_up(ctx: WorkerContext, subject: Subject, event: Event, code: str, reason: str) -> None:
    """The outcome of a message that failed for good: the deployment (if any) ends `error`, and the command's
    failure fact is published with the correlation id, so whoever waits is answered."""
    deployment_id: int | None = getattr(event, "deployment_id", None)
    fails_with = ROUTE[subject].fails_with
    if fails_with is None:
        # A fact this service only follows (logstream on run.completed): its failure is not the deployment's.
        if deployment_id is not None:
            await ctx.log(deployment_id, f"{ctx.service} could not handle {subject.value}: {reason}")
        return
    if deployment_id is not None:
        async with ctx.sessions() as session:
            result = await transition(session, deployment_id, DeploymentStatus.ERROR, reason, error_code=code)
            await session.commit()
        if not result.applied:
            log.warning("%s: deployment %s stays %s after the failure", ctx.service, deployment_id, result.current)
        await ctx.log(deployment_id, f"error {code}: {reason}")
    ids: dict[str, Any] = {"deployment_id": deployment_id} if deployment_id is not None else {}
    if hasattr(event, "repository_id"):
        ids["repository_id"] = event.repository_id
    failure = ROUTE[fails_with].payload
    assert issubclass(failure, Failure)  # the contract test checks every fails_with is a failure fact
    fact = failure(correlation_id=event.correlation_id, error_code=code, message=reason, **ids)
    await ctx.publish(fails_with, fact)


def make_context(service: Service, settings: Settings | None = None) -> WorkerContext:
    settings = settings or get_settings()
    engine = make_engine(settings.require_database_url(), application_name=f"portside-{service}")
    return WorkerContext(service, settings, make_broker(settings, service), engine, make_sessionmaker(engine))


# A worker's register() subscribes its handlers and may return background loops (e.g. the runner's
# reconciler), started once the broker runs and cancelled at shutdown.
Register = Callable[[WorkerContext], list[Callable[[], Awaitable[None]]] | None]


# Workers that talk to the Docker engine (their /readyz checks it).
USES_DOCKER = frozenset({"builder", "runner", "logstream"})


def build_worker(
    service: Service, register: Register, settings: Settings | None = None, listen: bool = True
) -> tuple[FastStream, WorkerContext]:
    """The worker's FastStream app; with `listen`, its /metrics, /healthz and /readyz listener runs beside it."""
    ctx = make_context(service, settings)
    loops = register(ctx) or []
    if listen:
        readiness = ctx.readiness(docker=service in USES_DOCKER)
        loops.append(lambda: serve_observe(readiness, service))
    tasks: list[asyncio.Future[None]] = []
    app = FastStream(ctx.broker, logger=logging.getLogger(f"portside.{service}"))

    @app.after_startup
    async def start_loops() -> None:
        tasks.extend(asyncio.ensure_future(loop()) for loop in loops)
        # Every process relays the outbox (one at a time, by an advisory lock): events go out while any runs.
        tasks.append(start_relay(ctx.engine, ctx.broker, ctx.settings))

    @app.on_shutdown
    async def stop_loops() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @app.on_startup
    async def declare_streams() -> None:
        # Before the broker starts its subscribers, which bind to the deploy stream.
        await ctx.broker.connect()
        await ensure_streams(ctx.broker, ctx.settings)

    @app.on_shutdown
    async def close_engine() -> None:
        await ctx.engine.dispose()

    return app, ctx


def run_worker(service: Service, register: Register) -> None:
    configure_logging(service)
    app, _ = build_worker(service, register)
    asyncio.run(app.run())

"""JetStream streams, the broker factory, the shared durable consumer each worker kind uses, and
publishing of events. Delivery is at least once; handlers must be idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from nats.errors import Error as NatsError
from nats.js.api import ConsumerConfig, DeliverPolicy, StorageType

from shared.config import Settings
from shared.messaging.contract import SUBJECT_PAYLOADS
from shared.messaging.events import Event, LogLine
from shared.messaging.subjects import DEPLOY_WILDCARD, EVENTS_WILDCARD, LOGS_WILDCARD, Subject, logs_subject
from shared.metrics import LOG_LINES

DAY = 24 * 3600
log = logging.getLogger(__name__)


def deploy_stream(settings: Settings, declare: bool = True) -> JStream:
    return JStream(
        name=settings.stream_name,
        subjects=[DEPLOY_WILDCARD],
        storage=StorageType.FILE,
        max_age=7 * DAY,
        declare=declare,
    )


def logs_stream(settings: Settings) -> JStream:
    # Logs are kept on disk so a client that connects late, or after a restart, still sees the build.
    return JStream(
        name=settings.logs_stream_name,
        subjects=[LOGS_WILDCARD],
        storage=StorageType.FILE,
        max_age=7 * DAY,
        # With every line capped at max_log_line_bytes, this bounds each deployment's log storage in bytes.
        max_msgs_per_subject=settings.max_log_lines_per_deployment,
        declare=True,
    )


def events_stream(settings: Settings, declare: bool = True) -> JStream:
    # Public events: kept PORTSIDE_EVENTS_MAX_AGE_HOURS so a subscriber that connects late can replay; the
    # duplicate window drops a second publish of one outbox row (Nats-Msg-Id) after a relay crash.
    return JStream(
        name=settings.events_stream_name,
        subjects=[EVENTS_WILDCARD],
        storage=StorageType.FILE,
        max_age=settings.events_max_age_hours * 3600,
        duplicate_window=600,
        declare=declare,
    )


def make_broker(settings: Settings, service: str) -> NatsBroker:
    # Reconnect forever: a nats-server restart must not kill the workers.
    return NatsBroker(
        settings.require_nats_url(),
        name=f"portside-{service}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=5,
    )


def worker_subscriber(
    broker: NatsBroker, settings: Settings, durable: str, subjects: Iterable[Subject], max_workers: int = 1
):
    """One durable pull consumer per worker kind, shared by all its replicas (scaling = start a process).

    A message is acknowledged only after its handler returned, i.e. after its work was committed; an
    exception naks it for redelivery. A worker that dies stops heart-beating and JetStream redelivers
    after `ack_wait` to another replica.
    """
    return broker.subscriber(
        DEPLOY_WILDCARD,
        # ensure_streams() declares it before the broker starts; a second declaration here would race it.
        stream=deploy_stream(settings, declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=1, timeout=2.0),
        config=ConsumerConfig(
            filter_subjects=[s.value for s in subjects],
            ack_wait=settings.ack_wait_seconds,
            max_deliver=settings.max_deliver,
        ),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=max_workers,
        title=f"{durable} consumer of {', '.join(s.value for s in subjects)}",
    )


def events_subscriber(broker: NatsBroker, settings: Settings, durable: str):
    """A durable pull consumer of the public events stream, shared by the replicas of one consumer kind
    (logstream's webhook fan-out). It starts with events published after it was first created."""
    return broker.subscriber(
        EVENTS_WILDCARD,
        stream=events_stream(settings, declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=1, timeout=2.0),
        config=ConsumerConfig(
            ack_wait=settings.ack_wait_seconds, max_deliver=settings.max_deliver, deliver_policy=DeliverPolicy.NEW,
        ),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{durable} consumer of portside.events.v1.>",
    )


def on_subject(subject: Subject):
    """Handler filter for a worker subscriber: route by the message's subject."""
    return lambda msg: msg.raw_message.subject == subject.value


async def _with_retry(send: Callable[[], Awaitable[object]], give_up_after: float) -> None:
    """Ride through a nats-server restart: the client reconnects by itself, JetStream keeps the stream on
    disk, so a publish that failed for lack of a connection or an ack succeeds a moment later."""
    deadline = asyncio.get_running_loop().time() + give_up_after
    delay = 0.2
    while True:
        try:
            await send()
            return
        except (TimeoutError, NatsError) as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.warning("publish failed (%s); retrying in %.1f s", exc.__class__.__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def publish(broker: NatsBroker, settings: Settings, subject: Subject, event: Event) -> None:
    """Publish `event` on `subject`; its type must be the subject's payload model in the contract table."""
    expected = SUBJECT_PAYLOADS[subject]
    if type(event) is not expected:
        raise TypeError(f"{subject.value} carries {expected.__name__}, not {type(event).__name__}")
    await _with_retry(
        lambda: broker.publish(
            event, subject.value, stream=settings.stream_name, correlation_id=event.correlation_id, timeout=5
        ),
        give_up_after=60,
    )


async def publish_log(broker: NatsBroker, settings: Settings, line: LogLine) -> None:
    """Append one line to the deployment's log, cut at PORTSIDE_MAX_LOG_LINE_BYTES (a line is never unbounded)."""
    if len(line.line.encode()) > settings.max_log_line_bytes:
        cut = line.line.encode()[: settings.max_log_line_bytes].decode("utf-8", errors="ignore")
        line = line.model_copy(update={"line": cut + " [line cut by Portside]"})
    await _with_retry(
        lambda: broker.publish(line, logs_subject(line.deployment_id), stream=settings.logs_stream_name, timeout=5),
        give_up_after=60,
    )
    LOG_LINES.labels(line.source).inc()


@contextlib.asynccontextmanager
async def in_progress(message: NatsMessage, interval: float) -> AsyncIterator[None]:
    """Tell JetStream the job is alive while it runs, so a long build is not redelivered mid-way."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await message.in_progress()
            except (TimeoutError, NatsError) as exc:  # the job goes on; at worst JetStream redelivers it
                log.warning("could not tell JetStream a job is alive (%s: %s); it may be redelivered",
                            exc.__class__.__name__, exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ensure_streams(broker: NatsBroker, settings: Settings) -> None:
    """Create (or update) the deploy, logs and events streams; every service calls this after connecting and before its
    subscribers start, so start order between services does not matter."""
    from nats.js.errors import BadRequestError

    js = broker.config.connection_state.stream
    for stream in (deploy_stream(settings), logs_stream(settings), events_stream(settings)):
        # JStream keeps its subjects apart from its config; the server needs them in the config.
        config = stream.config.evolve(subjects=list(stream.subjects))
        try:
            await js.add_stream(config=config)
        except BadRequestError:
            await js.update_stream(config=config)

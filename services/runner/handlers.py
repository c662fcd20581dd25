"""NATS wiring for the runner: a build that completed is started; run, stop and delete commands are obeyed.
Beside the handlers, each replica watches Docker events and reconciles containers with Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from faststream.nats import NatsMessage

from services.runner import service
from services.runner.reconcile import reconcile_forever
from services.runner.watcher import watch
from shared.messaging.events import BuildCompleted, DeleteRequested, RunRequested, StopRequested
from shared.messaging.streams import in_progress, on_subject, worker_subscriber
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

COMMANDS = (Subject.BUILD_COMPLETED, Subject.RUN_REQUESTED, Subject.STOP_REQUESTED, Subject.DELETE_REQUESTED)


def register(ctx: WorkerContext) -> list[Callable[[], Awaitable[None]]]:
    # Starting mostly waits on the app, so one replica runs several at once.
    subscriber = worker_subscriber(ctx.broker, ctx.settings, "runner", COMMANDS, max_workers=8)
    heartbeat = ctx.settings.ack_wait_seconds / 3

    @subscriber(filter=on_subject(Subject.BUILD_COMPLETED))
    async def on_built(event: BuildCompleted, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.run(ctx, event.deployment_id, event.correlation_id)

    @subscriber(filter=on_subject(Subject.RUN_REQUESTED))
    async def on_run(event: RunRequested, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.run(ctx, event.deployment_id, event.correlation_id, image_tag=event.image_tag)

    @subscriber(filter=on_subject(Subject.STOP_REQUESTED))
    async def on_stop(event: StopRequested, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.stop(ctx, event.deployment_id, event.correlation_id)

    @subscriber(filter=on_subject(Subject.DELETE_REQUESTED))
    async def on_delete(event: DeleteRequested, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.delete(ctx, event.deployment_id, event.purge, event.correlation_id)

    # The events stream reconnecting (e.g. after an engine restart) triggers a reconcile pass at once.
    reconnected = asyncio.Event()
    return [lambda: watch(ctx, reconnected), lambda: reconcile_forever(ctx, reconnected)]

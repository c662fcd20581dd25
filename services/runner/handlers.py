"""NATS wiring for the runner: a build that completed is started; run, stop and delete commands are obeyed.
Beside the handlers, each replica watches Docker events and reconciles containers with Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.runner import service
from services.runner.reconcile import reconcile_forever
from services.runner.sampler import sample_forever
from services.runner.watcher import watch
from shared.messaging.events import BuildCompleted, DeleteRequested, RunRequested, StopRequested
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext, subscribe


def register(ctx: WorkerContext) -> list[Callable[[], Awaitable[None]]]:
    async def on_built(event: BuildCompleted) -> None:
        await service.run(ctx, event.deployment_id, event.correlation_id)

    async def on_run(event: RunRequested) -> None:
        await service.run(ctx, event.deployment_id, event.correlation_id, image_tag=event.image_tag)

    async def on_stop(event: StopRequested) -> None:
        await service.stop(ctx, event.deployment_id, event.correlation_id)

    async def on_delete(event: DeleteRequested) -> None:
        await service.delete(ctx, event.deployment_id, event.purge, event.correlation_id)

    # Starting mostly waits on the app, so one replica runs several at once.
    subscribe(ctx, {
        Subject.BUILD_COMPLETED: on_built, Subject.RUN_REQUESTED: on_run,
        Subject.STOP_REQUESTED: on_stop, Subject.DELETE_REQUESTED: on_delete,
    }, max_workers=8)

    # The events stream reconnecting (e.g. after an engine restart) triggers a reconcile pass at once.
    reconnected = asyncio.Event()
    return [lambda: watch(ctx, reconnected), lambda: reconcile_forever(ctx, reconnected), lambda: sample_forever(ctx)]

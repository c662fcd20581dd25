"""NATS wiring for the builder: parse, call service, acknowledge (FastStream acks after return)."""

from __future__ import annotations

from faststream.nats import NatsMessage

from services.builder import service
from shared.messaging.events import BuildRequested, GenerateRequested
from shared.messaging.streams import in_progress, on_subject, worker_subscriber
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

COMMANDS = (Subject.GENERATE_REQUESTED, Subject.BUILD_REQUESTED)


def register(ctx: WorkerContext) -> None:
    # Two builds at once per replica: builds are CPU-bound, and one slow build must not block a generate.
    subscriber = worker_subscriber(ctx.broker, ctx.settings, "builder", COMMANDS, max_workers=2)
    heartbeat = ctx.settings.ack_wait_seconds / 3

    @subscriber(filter=on_subject(Subject.GENERATE_REQUESTED))
    async def on_generate(event: GenerateRequested, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.generate(ctx, event)

    @subscriber(filter=on_subject(Subject.BUILD_REQUESTED))
    async def on_build(event: BuildRequested, message: NatsMessage) -> None:
        async with in_progress(message, heartbeat):
            await service.build(ctx, event)

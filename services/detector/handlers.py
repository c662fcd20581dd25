"""NATS wiring for the detector: parse, call service, publish the fact, acknowledge."""

from __future__ import annotations

from faststream.nats import NatsMessage

from services.detector import worker
from shared.messaging.events import DetectRequested
from shared.messaging.streams import in_progress, on_subject, worker_subscriber
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

COMMANDS = (Subject.DETECT_REQUESTED,)


def register(ctx: WorkerContext) -> None:
    subscriber = worker_subscriber(ctx.broker, ctx.settings, "detector", COMMANDS, max_workers=4)

    @subscriber(filter=on_subject(Subject.DETECT_REQUESTED))
    async def on_detect(event: DetectRequested, message: NatsMessage) -> None:
        async with in_progress(message, ctx.settings.ack_wait_seconds / 3):
            await worker.detect_and_store(ctx, event)

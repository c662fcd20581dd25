"""NATS wiring for the detector: parse, call service, publish the fact, acknowledge
(shared.worker.subscribe wraps the handler)."""

from __future__ import annotations

from services.detector import worker
from shared.messaging.events import DetectRequested
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext, subscribe


def register(ctx: WorkerContext) -> None:
    async def on_detect(event: DetectRequested) -> None:
        await worker.detect_and_store(ctx, event)

    subscribe(ctx, {Subject.DETECT_REQUESTED: on_detect}, max_workers=4)

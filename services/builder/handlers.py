"""NATS wiring for the builder: parse, call generate or build, acknowledge (shared.worker.subscribe wraps
each handler)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.builder.build import build
from services.builder.generate import generate
from services.builder.janitor import janitor_loop
from shared.messaging.events import BuildRequested, GenerateRequested
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext, subscribe


def register(ctx: WorkerContext) -> list[Callable[[], Awaitable[None]]]:
    async def on_generate(event: GenerateRequested) -> None:
        await generate(ctx, event)

    async def on_build(event: BuildRequested) -> None:
        await build(ctx, event)

    # Two builds at once per replica: builds are CPU-bound, and one slow build must not block a generate.
    subscribe(ctx, {Subject.GENERATE_REQUESTED: on_generate, Subject.BUILD_REQUESTED: on_build}, max_workers=2)

    async def janitor() -> None:
        await janitor_loop(ctx)

    return [janitor]

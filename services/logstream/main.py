"""Logstream process: relays container logs into the logs stream and serves them over SSE
(`python -m services.logstream.main`, started by `portside up`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from services.logstream.relay import Relay
from services.logstream.routes import router
from shared.config import get_settings
from shared.messaging.events import RunCompleted
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext, configure_logging, make_context, subscribe


def register(ctx: WorkerContext, relay: Relay) -> None:
    async def on_running(event: RunCompleted) -> None:
        relay.follow(event.deployment_id, event.container_id)

    subscribe(ctx, {Subject.RUN_COMPLETED: on_running})


def create_app() -> FastAPI:
    ctx = make_context("logstream")
    relay = Relay(ctx)
    register(ctx, relay)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        await relay.resume_all()
        yield
        await relay.stop()
        await ctx.close()

    app = FastAPI(title="Portside logstream", lifespan=lifespan)
    app.state.ctx = ctx
    app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    return app


def main() -> None:
    configure_logging("logstream")
    settings = get_settings()
    uvicorn.run(create_app(), host=settings.logstream_host, port=settings.logstream_port, log_level="warning")


if __name__ == "__main__":
    main()

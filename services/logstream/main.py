"""Logstream process: relays container logs into the logs stream and serves them over SSE
(`python -m services.logstream.main`, started by `portside up`)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.nats import NatsMessage
from starlette.types import ASGIApp, Receive, Scope, Send

from services.logstream.relay import Relay
from services.logstream.routes import router
from shared.config import get_settings
from shared.messaging.events import RunCompleted
from shared.messaging.streams import on_subject, worker_subscriber
from shared.messaging.subjects import Subject
from shared.secrets import INTERNAL_HEADER, internal_key
from shared.worker import WorkerContext, configure_logging, make_context


def register(ctx: WorkerContext, relay: Relay) -> None:
    subscriber = worker_subscriber(ctx.broker, ctx.settings, "logstream", (Subject.RUN_COMPLETED,), max_workers=1)

    @subscriber(filter=on_subject(Subject.RUN_COMPLETED))
    async def on_running(event: RunCompleted, message: NatsMessage) -> None:
        relay.follow(event.deployment_id, event.container_id)


class OnlyTheApi:
    """Users reach logs through the API, which checks who may read what and then vouches with the
    installation's key; a request without it is refused (the port may be reachable by others)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/healthz":
            given = dict(scope["headers"]).get(INTERNAL_HEADER.lower().encode(), b"")
            if not hmac.compare_digest(given, self.key):
                response = JSONResponse({"detail": "Read logs through the Portside API.", "error_code": "UNAUTHORIZED"},
                                        status_code=401)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
    app.add_middleware(OnlyTheApi, key=internal_key(ctx.settings))

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

"""Logstream process: relays container logs into the logs stream and serves them over SSE, and delivers the
public events to outgoing webhooks (`python -m services.logstream.main`, started by `portside up`)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from services.logstream.relay import Relay
from services.logstream.routes import router
from services.logstream.webhooks import Deliverer
from shared.config import get_settings
from shared.logs import configure_logging
from shared.messaging.events import RunCompleted
from shared.messaging.subjects import Subject
from shared.observe import HttpMetrics, observe_router
from shared.secrets import INTERNAL_HEADER, internal_key
from shared.worker import USES_DOCKER, WorkerContext, make_context, subscribe


def register(ctx: WorkerContext, relay: Relay) -> None:
    async def on_running(event: RunCompleted) -> None:
        relay.follow(event.deployment_id, event.container_id)

    subscribe(ctx, {Subject.RUN_COMPLETED: on_running})


class OnlyTheApi:
    """Users reach logs through the API, which checks who may read what and then vouches with the
    installation's key; a request without it is refused (the port may be reachable by others)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Health and metrics are the operator's, not a user's: /metrics has its own token (shared/observe.py).
        if scope["type"] == "http" and scope["path"] not in ("/healthz", "/readyz", "/metrics"):
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
    webhooks = Deliverer(ctx)
    webhooks.register()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        await relay.resume_all()
        webhooks.start()
        yield
        await webhooks.stop()
        await relay.stop()
        await ctx.close()

    app = FastAPI(title="Portside logstream", lifespan=lifespan)
    app.state.ctx = ctx
    readiness = ctx.readiness(docker="logstream" in USES_DOCKER)
    app.include_router(router)
    # Without PORTSIDE_METRICS_TOKEN its /metrics answers like a worker's: the port is the operator's.
    app.include_router(observe_router(lambda _: readiness))
    app.add_middleware(OnlyTheApi, key=internal_key(ctx.settings))
    app.add_middleware(HttpMetrics, service="logstream")
    return app


def main() -> None:
    configure_logging("logstream")
    settings = get_settings()
    uvicorn.run(create_app(), host=settings.logstream_host, port=settings.logstream_port, log_level="warning")


if __name__ == "__main__":
    main()

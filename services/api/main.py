"""API process: `python -m services.api.main` (started by `portside up`); OpenAPI at /docs, the web page at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services.api.auth import RateLimiter, Tokens
from services.api.bus import Bus
from services.api.errors import install_error_handlers
from services.api.gitpush import GitHooks
from services.api.guard import RequestGuard
from services.api.limits import BodyLimit
from services.api.routes import (
    audit,
    auth,
    deployments,
    domains,
    env,
    events,
    hooks,
    logs,
    repositories,
    system,
    tokens,
    users,
    webhooks,
)
from services.api.web import install_web
from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker
from shared.logs import configure_logging
from shared.messaging.contract import Service, consumed_by
from shared.messaging.outbox import start_relay, stop_relay
from shared.observe import HttpMetrics, Readiness, observe_router

# Every durable consumer: the API's /metrics reports the lag of them all.
CONSUMERS: tuple[Service, ...] = tuple(s for s in ("detector", "builder", "runner", "logstream") if consumed_by(s))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.require_database_url(), application_name="portside-api")
    bus = Bus(settings)
    sessions = make_sessionmaker(engine)
    git_hooks = GitHooks(bus, sessions)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        relay = start_relay(engine, bus.broker, settings)
        git_hooks.start()
        yield
        await git_hooks.stop()
        await stop_relay(relay)
        await bus.stop()
        await engine.dispose()

    app = FastAPI(
        title="Portside",
        description="Point Portside at a git repository; get a running container.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.bus = bus
    app.state.sessions = sessions
    app.state.git_hooks = git_hooks
    app.state.tokens = Tokens(settings)
    app.state.limiter = RateLimiter(app.state.sessions)
    app.state.readiness = Readiness(settings, engine, bus.broker, docker=True, consumers=CONSUMERS)
    app.state.readiness.refreshers.append(lambda: system.count_deployments(app.state.sessions))
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(tokens.router)
    app.include_router(repositories.router)
    app.include_router(deployments.router)
    app.include_router(env.router)
    app.include_router(domains.router)
    app.include_router(logs.router)
    app.include_router(audit.router)
    app.include_router(hooks.router)
    app.include_router(system.router)
    app.include_router(observe_router(lambda request: request.app.state.readiness, metrics=False))
    app.include_router(webhooks.router)
    app.include_router(events.router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(RequestGuard, settings=settings)
    app.add_middleware(HttpMetrics, service="api")  # added last, so it runs first and counts refusals too

    default_openapi = app.openapi

    def openapi() -> dict:
        # Validation errors leave as {"detail": "<sentence>", "error_code": "VALIDATION_ERROR"} (errors.py),
        # not FastAPI's list of locations: the document says what the API answers.
        if app.openapi_schema is None:
            schema = default_openapi()
            schema.get("components", {}).get("schemas", {})["HTTPValidationError"] = {
                "title": "ErrorBody", "type": "object", "required": ["detail", "error_code"],
                "properties": {"detail": {"type": "string", "title": "Detail"},
                               "error_code": {"type": "string", "title": "Error Code"}},
            }
            schema["components"]["schemas"].pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/api/health", tags=["system"])
    async def health() -> dict:
        return {"success": True, "data": {"status": "ok"}}

    install_web(app)  # last: its catch-all answers only what no API route did
    return app


def main() -> None:
    configure_logging("api")
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning")


if __name__ == "__main__":
    main()

"""API process: `python -m services.api.main` (started by `portside up`); OpenAPI at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from services.api.bus import Bus
from services.api.errors import install_error_handlers
from services.api.limits import BodyLimit
from services.api.routes import deployments, logs, repositories
from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.require_database_url(), application_name="portside-api")
    bus = Bus(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bus.start()
        yield
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
    app.state.sessions = make_sessionmaker(engine)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.include_router(repositories.router)
    app.include_router(deployments.router)
    app.include_router(logs.router)

    @app.get("/api/health", tags=["system"])
    async def health() -> dict:
        return {"success": True, "data": {"status": "ok"}}

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s api %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning")


if __name__ == "__main__":
    main()

"""What every service answers about itself: `/healthz` (the process is alive), `/readyz` (its dependencies
answer: Postgres, NATS, the Docker engine where it uses one; 503 naming the one that failed) and `/metrics`
(Prometheus text). The API and logstream include `observe_router`; a worker serves it on its own small
listener (`serve_observe`). `HttpMetrics` counts requests by route template and status."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import anyio
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream.nats import NatsBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics as prom
from shared.config import Settings
from shared.docker import docker_client

log = logging.getLogger(__name__)

# Generous: a loaded machine answers a Docker ping in seconds, and a false 503 pulls a service out of rotation.
CHECK_TIMEOUT = 5.0
Dependency = str  # "postgres", "nats", "docker"


@dataclass
class Readiness:
    """The dependencies a service needs, and how to refresh its scrape-time figures."""

    settings: Settings
    engine: AsyncEngine
    broker: NatsBroker
    docker: bool
    consumers: Sequence[str] = ()
    # Extra figures read at scrape time (the API's deployments by status).
    refreshers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def check(self) -> dict[Dependency, str]:
        """Each dependency's state: "ok", or a sentence on what failed."""
        checks: dict[Dependency, Awaitable[None]] = {"postgres": self._postgres(), "nats": self._nats()}
        if self.docker:
            checks["docker"] = anyio.to_thread.run_sync(self._docker)
        results = await asyncio.gather(
            *(asyncio.wait_for(c, CHECK_TIMEOUT) for c in checks.values()), return_exceptions=True
        )
        return {
            name: "ok" if not isinstance(result, BaseException) else _reason(result)
            for name, result in zip(checks, results, strict=True)
        }

    async def _postgres(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _nats(self) -> None:
        try:
            connection = self.broker.connection
        except Exception as exc:  # FastStream raises before the first connect
            raise ConnectionError("not connected yet") from exc
        if not connection.is_connected:
            raise ConnectionError("not connected (reconnecting)")
        await connection.flush(timeout=int(CHECK_TIMEOUT))

    def _docker(self) -> None:
        docker_client(self.settings, timeout=int(CHECK_TIMEOUT)).close()

    async def refresh(self) -> None:
        # Not connected yet: the lag figures keep their last value.
        if self.consumers and self.broker.config.connection_state:
            await prom.refresh_consumer_lag(self.broker.config.connection_state.stream, self.settings, self.consumers)
        for refresher in self.refreshers:
            try:
                await refresher()
            except Exception as exc:  # noqa: BLE001 - a scrape answers what it has; /readyz says what is down
                log.warning("a scrape-time figure could not be read: %s: %s", exc.__class__.__name__, exc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:.0f} s"
    message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {message}"[:300]


def metrics_token_ok(request: Request, settings: Settings) -> bool:
    """True when the request carries PORTSIDE_METRICS_TOKEN as its bearer token."""
    if not settings.metrics_token:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.metrics_token.encode())


def metrics_refused() -> JSONResponse:
    return JSONResponse(
        {"detail": "Send `Authorization: Bearer <PORTSIDE_METRICS_TOKEN>` to read /metrics.",
         "error_code": "UNAUTHORIZED"},
        status_code=401, headers={"WWW-Authenticate": "Bearer"},
    )


async def metrics_body(readiness: Readiness) -> Response:
    await readiness.refresh()
    return Response(prom.render(), media_type=prom.CONTENT_TYPE)


async def readyz_body(readiness: Readiness) -> JSONResponse:
    checks = await readiness.check()
    failed = [name for name, state in checks.items() if state != "ok"]
    if not failed:
        return JSONResponse({"ready": True, "checks": checks})
    return JSONResponse(
        {"ready": False, "checks": checks, "error_code": "NOT_READY",
         "detail": f"{', '.join(failed)} did not answer: {'; '.join(checks[n] for n in failed)}. "
                   "Start it or fix its URL; /readyz answers 200 once it is back."},
        status_code=503,
    )


def observe_router(
    readiness: Callable[[Request], Readiness], metrics: bool = True, open_metrics: bool = True
) -> APIRouter:
    """/healthz, /readyz and (with `metrics`) /metrics. `open_metrics`: without PORTSIDE_METRICS_TOKEN, /metrics
    answers anyone (a worker's loopback listener); with it, only that token. The API serves its own /metrics,
    which an admin may read too (services/api/routes/system.py)."""
    router = APIRouter(tags=["system"])

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"alive": True}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        return await readyz_body(readiness(request))

    if not metrics:
        return router

    @router.get("/metrics")
    async def metrics_route(request: Request) -> Response:
        ready = readiness(request)
        if not (metrics_token_ok(request, ready.settings) or (open_metrics and not ready.settings.metrics_token)):
            return metrics_refused()
        return await metrics_body(ready)

    return router


class HttpMetrics:
    """Counts every HTTP response by method, route template (`/api/deployments/{deployment_id}`, so ids do not
    make a series each) and status. Paths no route matched count as "unmatched"."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            prom.HTTP_REQUESTS.labels(self.service, scope["method"], template, str(status)).inc()


class _QuietServer(uvicorn.Server):
    """Leaves the process's signals to FastStream, which stops the worker (and cancels this listener)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def worker_port(settings: Settings, service: str) -> int:
    """A worker's listener port: PORTSIDE_METRICS_PORT, or the base port plus its place among the workers."""
    if settings.metrics_port is not None:
        return settings.metrics_port
    order = ("detector", "builder", "runner")
    return settings.metrics_base_port + (order.index(service) if service in order else 0)


async def serve_observe(readiness: Readiness, service: str) -> None:
    """A worker's small HTTP listener for /healthz, /readyz and /metrics; runs until cancelled."""
    app = FastAPI(title=f"Portside {service}", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(observe_router(lambda _: readiness))
    app.add_middleware(HttpMetrics, service=service)
    port = worker_port(readiness.settings, service)
    config = uvicorn.Config(app, host=readiness.settings.metrics_host, port=port, log_level="warning",
                            lifespan="off")
    server = _QuietServer(config)
    log.info("%s serves /metrics, /healthz and /readyz on http://%s:%d", service,
             readiness.settings.metrics_host, port)
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits when it cannot bind. A worker without its listener still does its jobs: say so, go on.
        log.error("%s could not listen on %s:%d for /metrics, /healthz and /readyz (the port is taken?); it runs "
                  "without them. Set PORTSIDE_METRICS_BASE_PORT (or PORTSIDE_METRICS_PORT) to a free port.",
                  service, readiness.settings.metrics_host, port)
    finally:
        server.should_exit = True

"""What every worker process shares: settings, broker, database sessions, and the FastStream app that
runs them. A worker's main.py is `run_worker("builder", register)`; its handlers get a WorkerContext."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from faststream import FastStream
from faststream.nats import NatsBroker
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config import Settings, get_settings
from shared.db.session import make_engine, make_sessionmaker
from shared.messaging.events import Event, LogLine
from shared.messaging.streams import ensure_streams, make_broker, publish, publish_log
from shared.messaging.subjects import Subject


@dataclass
class WorkerContext:
    service: str
    settings: Settings
    broker: NatsBroker
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def publish(self, subject: Subject, event: Event) -> None:
        await publish(self.broker, self.settings, subject, event)

    async def log(
        self,
        deployment_id: int,
        line: str,
        source: Literal["build", "app", "system"] = "system",
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        await publish_log(
            self.broker,
            self.settings,
            LogLine(deployment_id=deployment_id, source=source, line=line, step=step, total_steps=total_steps),
        )

    async def start(self) -> None:
        await self.broker.connect()
        await ensure_streams(self.broker, self.settings)
        await self.broker.start()

    async def close(self) -> None:
        await self.broker.stop()
        await self.engine.dispose()


def make_context(service: str, settings: Settings | None = None) -> WorkerContext:
    settings = settings or get_settings()
    engine = make_engine(settings.require_database_url(), application_name=f"portside-{service}")
    return WorkerContext(service, settings, make_broker(settings, service), engine, make_sessionmaker(engine))


def configure_logging(service: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")


# A worker's register() subscribes its handlers and may return background loops (e.g. the runner's
# reconciler), started once the broker runs and cancelled at shutdown.
Register = Callable[[WorkerContext], list[Callable[[], Awaitable[None]]] | None]


def build_worker(service: str, register: Register, settings: Settings | None = None) -> tuple[FastStream, WorkerContext]:
    ctx = make_context(service, settings)
    loops = register(ctx) or []
    tasks: list[asyncio.Task[None]] = []
    app = FastStream(ctx.broker, logger=logging.getLogger(f"portside.{service}"))

    @app.after_startup
    async def start_loops() -> None:
        tasks.extend(asyncio.create_task(loop()) for loop in loops)

    @app.on_shutdown
    async def stop_loops() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @app.on_startup
    async def declare_streams() -> None:
        # Before the broker starts its subscribers, which bind to the deploy stream.
        await ctx.broker.connect()
        await ensure_streams(ctx.broker, ctx.settings)

    @app.on_shutdown
    async def close_engine() -> None:
        await ctx.engine.dispose()

    return app, ctx


def run_worker(service: str, register: Register) -> None:
    configure_logging(service)
    app, _ = build_worker(service, register)
    asyncio.run(app.run())

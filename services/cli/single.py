"""`portside up --single-process`: the same five services, subjects and durable consumers as `portside up`,
as tasks of one process (one interpreter and one copy of every library instead of five), for a small machine.
The embedded servers, migrations and clean shutdown are the supervisor's; only the services move in-process.

Each service keeps what it has as a process: its own broker connection, its own database pool, its own HTTP
server where it has one. What is lost is isolation: one service that blocks the event loop or crashes the
interpreter takes the others with it, and a worker cannot be restarted alone (the process exits instead, so a
process manager restarts everything)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import NoReturn

import httpx
import uvicorn
from faststream import FastStream
from rich.console import Console

from services.cli.supervisor import Supervisor
from shared.config import Settings, get_settings
from shared.logs import configure_logging
from shared.messaging.contract import Service
from shared.worker import Register, build_worker

WORKERS: tuple[Service, ...] = ("detector", "builder", "runner")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us: two servers in one process must not fight over them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _worker_apps(settings: Settings) -> dict[Service, FastStream]:
    # Imported here, like the supervisor's modules: only this mode loads every service into one process.
    from services.builder.handlers import register as builder
    from services.detector.handlers import register as detector
    from services.runner.handlers import register as runner

    registers: dict[Service, Register] = {"detector": detector, "builder": builder, "runner": runner}
    # One process, one registry: the API's /metrics carries every service's figures, so no worker listens.
    return {name: build_worker(name, registers[name], settings, listen=False)[0] for name in WORKERS}


async def serve(settings: Settings, supervisor: Supervisor) -> int:
    from services.api.main import create_app as api_app
    from services.logstream.main import create_app as logstream_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    servers = {
        "api": _Server(uvicorn.Config(api_app(settings), host=settings.api_host, port=settings.api_port,
                                      log_level="warning", lifespan="on")),
        "logstream": _Server(uvicorn.Config(logstream_app(), host=settings.logstream_host,
                                            port=settings.logstream_port, log_level="warning", lifespan="on")),
    }
    workers = _worker_apps(settings)
    tasks = {name: asyncio.create_task(server.serve(), name=name) for name, server in servers.items()}
    started: list[FastStream] = []
    code = 0
    try:
        for app in workers.values():
            await app.start()
            started.append(app)
        await _announce(settings, supervisor, stop)
        # A server that ends on its own (a port already taken, a crash) ends the process: a process manager
        # restarts it whole, which is what one process can offer.
        ended = asyncio.create_task(asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({ended, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            failed = [name for name, task in tasks.items() if task.done()]
            supervisor.say(f"[red]{', '.join(failed)} stopped on its own; stopping Portside[/]")
            code = 1
        waiter.cancel()
        ended.cancel()
    finally:
        for app in reversed(started):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(app.stop(), 15)
        for server in servers.values():
            server.should_exit = True
        await asyncio.wait(tasks.values(), timeout=15)
    supervisor.say("services stopped")
    return code


async def _announce(settings: Settings, supervisor: Supervisor, stop: asyncio.Event) -> None:
    url = f"http://{settings.api_host}:{settings.api_port}"
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            if stop.is_set():
                return
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/api/health")).status_code == 200:
                    supervisor.say(f"up (single process, pid {os.getpid()}): API {url} (docs {url}/docs), "
                                   "services api, logstream, detector, builder, runner. Ctrl-C stops everything.")
                    return
            await asyncio.sleep(0.2)
    supervisor.say(f"[yellow]the API did not answer at {url} within 60 s; see the messages above[/]")


def run_single(settings: Settings, console: Console | None = None) -> NoReturn:
    """Embedded servers (unless URLs are set) and migrations as `portside up` does, then every service here."""
    configure_logging("portside")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    supervisor = Supervisor(settings, {}, console)
    code = 1
    try:
        os.environ.update(supervisor.start_servers())
        get_settings.cache_clear()  # the services read the servers' URLs from the environment
        code = asyncio.run(serve(get_settings(), supervisor))
    except Exception:
        logging.getLogger("portside").exception("portside up --single-process failed")
    finally:
        supervisor.shutdown()
        # Threads blocked in the Docker SDK (the runner's events stream) cannot be interrupted, and the
        # interpreter would wait for them at exit; the separate runner process is killed for the same reason.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

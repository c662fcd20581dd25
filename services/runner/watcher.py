"""Notices apps that die after they were running, through Docker's event stream (no polling): a
container Docker could not keep up is marked `crashed`, taken down, and its port freed."""

from __future__ import annotations

import asyncio
import logging
import threading

import anyio
from docker.errors import DockerException, NotFound

from services.runner.service import mark_down
from shared.db.models import Deployment
from shared.db.repository import record_event
from shared.db.status import DeploymentStatus as S
from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE, docker_client
from shared.docker.client import engine_or_none
from shared.docker.containers import COMPOSE_SERVICE, logs_tail
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import RunFailed
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

# Docker restarts a container with a restart policy about 100 ms after `die`; look once it had time to.
SETTLE_SECONDS = 1.0



class Died:
    __slots__ = ("container_id", "deployment_id", "exit_code", "service")

    def __init__(self, deployment_id: int, container_id: str, service: str, exit_code: int | None) -> None:
        self.deployment_id, self.container_id, self.service, self.exit_code = (
            deployment_id,
            container_id,
            service,
            exit_code,
        )


async def watch(ctx: WorkerContext, on_reconnect: asyncio.Event | None = None) -> None:
    """Runs for the life of the runner; reconnects when the engine goes away and comes back."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Died] = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        filters = {"type": "container", "event": ["die"], "label": [f"{LABEL_INSTANCE}={ctx.settings.instance}"]}
        while not stop.is_set():
            try:
                client = docker_client(ctx.settings, timeout=3600 * 24)
            except PortsideError as exc:
                log.warning("docker events: the engine does not answer (%s); retrying in 5 s", exc.message)
                stop.wait(5)
                continue
            try:
                if on_reconnect is not None:
                    loop.call_soon_threadsafe(on_reconnect.set)
                for event in client.events(decode=True, filters=filters):
                    if stop.is_set():
                        return
                    attrs = event.get("Actor", {}).get("Attributes", {})
                    deployment = attrs.get(LABEL_DEPLOYMENT, "")
                    if not deployment.isdigit():
                        continue
                    code = attrs.get("exitCode")
                    died = Died(int(deployment), event.get("id", ""), attrs.get(COMPOSE_SERVICE, ""),
                                int(code) if code and code.lstrip("-").isdigit() else None)
                    loop.call_soon_threadsafe(queue.put_nowait, died)
            except DockerException as exc:
                log.warning("docker events stream ended (%s); reconnecting", exc)
            finally:
                client.close()
            stop.wait(2)

    pump_task = asyncio.ensure_future(anyio.to_thread.run_sync(pump, abandon_on_cancel=True))
    try:
        while True:
            died = await queue.get()
            asyncio.create_task(_handle(ctx, died))
    finally:
        stop.set()
        pump_task.cancel()


async def _handle(ctx: WorkerContext, died: Died) -> None:
    try:
        await handle_death(ctx, died)
    except Exception:  # one bad event must not stop the watcher; the reconciler's next pass settles it
        log.exception("handling the death of container %s of deployment %s failed; the reconciler will settle it",
                      died.container_id[:12], died.deployment_id)


async def handle_death(ctx: WorkerContext, died: Died) -> None:
    async with ctx.sessions() as session:
        deployment = await session.get(Deployment, died.deployment_id)
        if deployment is None or deployment.status != S.RUNNING or died.service != deployment.app_service:
            return  # stopped or replaced on purpose, or a backing service (its app will show the effect)
        if deployment.container_id and deployment.container_id != died.container_id:
            return  # an older container of a redeploy
    state, restarts, tail, may_restart = await anyio.to_thread.run_sync(_inspect, ctx, died.container_id)
    if may_restart and state not in ("running", "restarting"):
        # Its restart policy may bring it back: give Docker a moment before calling it a crash.
        await asyncio.sleep(SETTLE_SECONDS)
        state, restarts, tail, _ = await anyio.to_thread.run_sync(_inspect, ctx, died.container_id)
    kept_up = state in ("running", "restarting") and restarts < ctx.settings.crash_restart_limit
    if kept_up:
        async with ctx.sessions() as session:
            await record_event(session, died.deployment_id, S.RUNNING,
                               f"the app exited with code {died.exit_code}; Docker restarted it (restart {restarts})")
            await session.commit()
        await ctx.log(died.deployment_id, f"the app exited with code {died.exit_code}; Docker restarted it")
        return
    why = "kept exiting" if restarts >= ctx.settings.crash_restart_limit else "exited"
    message = f"The app {why} (exit code {died.exit_code}) after it was running." + (
        "\nLast lines:\n" + "\n".join(tail) if tail else "")
    if not await mark_down(ctx, died.deployment_id, S.RUNNING, S.CRASHED, message, ErrorCode.APP_CRASHED,
                           died.exit_code):
        return
    await ctx.log(died.deployment_id, message.splitlines()[0])
    await ctx.publish(
        Subject.RUN_FAILED,
        RunFailed(deployment_id=died.deployment_id, error_code=ErrorCode.APP_CRASHED, message=message),
    )


def _inspect(ctx: WorkerContext, container_id: str) -> tuple[str, int, list[str], bool]:
    """(state, restart count, last log lines, whether a restart policy may restart it);
    ('gone', 0, [], False) when the container no longer exists."""
    with engine_or_none(ctx.settings, timeout=30) as client:
        if client is None:
            return "unknown", 0, [], False
        try:
            container = client.containers.get(container_id)
        except NotFound:
            return "gone", 0, [], False
        state = container.attrs.get("State", {})
        policy = (container.attrs.get("HostConfig", {}).get("RestartPolicy") or {}).get("Name") or "no"
        return (state.get("Status", "unknown"), int(container.attrs.get("RestartCount") or 0),
                logs_tail(container, 50), policy != "no")

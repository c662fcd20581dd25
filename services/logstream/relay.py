"""Follows the app containers' output and appends each line to the logs stream (JetStream, on disk), so a
client that connects late, or after a restart of anything, still gets every line."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from datetime import UTC, datetime
from typing import cast

import anyio
from docker.errors import DockerException, NotFound
from nats.js.errors import NotFoundError
from sqlalchemy import select

from shared.db.models import Deployment
from shared.db.status import DeploymentStatus as S
from shared.docker import Owner, docker_client
from shared.docker.containers import app_container, app_service, parse_docker_time
from shared.errors import PortsideError
from shared.messaging.events import LogLine
from shared.messaging.streams import publish_log
from shared.messaging.subjects import logs_subject
from shared.worker import WorkerContext

log = logging.getLogger(__name__)


class Relay:
    """One follower task per running deployment in this process. Several logstream replicas may follow the same
    container (each resumes every running deployment when it starts): JetStream keeps one copy of each line."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.followers: dict[int, asyncio.Task[None]] = {}
        self.containers: dict[int, str | None] = {}

    def follow(self, deployment_id: int, container_id: str | None, resume: bool = False) -> None:
        """Follow the deployment's app container; a new container (redeploy) replaces the old follower.
        `resume` continues after the last stored line instead of from the container's start."""
        current = self.containers.get(deployment_id)
        task = self.followers.get(deployment_id)
        if task is not None and not task.done():
            if current == container_id:
                return
            task.cancel()
        self.containers[deployment_id] = container_id
        self.followers[deployment_id] = asyncio.create_task(self._follow(deployment_id, container_id, resume))

    async def resume_all(self) -> None:
        """At start: follow every deployment Postgres says is running, from where the stream left off."""
        async with self.ctx.sessions() as session:
            rows = (await session.execute(
                select(Deployment.id, Deployment.container_id).where(Deployment.status == S.RUNNING)
            )).all()
        for deployment_id, container_id in rows:
            self.follow(deployment_id, container_id, resume=True)

    async def stop(self) -> None:
        for task in self.followers.values():
            task.cancel()
        for deployment_id, task in self.followers.items():
            try:
                await task
            except asyncio.CancelledError:
                pass  # what stop() asked for
            except Exception as exc:  # shutting down anyway; the reason is worth a line
                log.warning("the log follower of deployment %s ended with %s: %s", deployment_id,
                            exc.__class__.__name__, exc, exc_info=True)

    async def _last_app_time(self, deployment_id: int) -> datetime | None:
        js = self.ctx.broker.config.connection_state.stream
        try:
            msg = await js.get_last_msg(self.ctx.settings.logs_stream_name, logs_subject(deployment_id))
        except NotFoundError:
            return None  # no line stored yet: follow from the start
        try:
            return LogLine.model_validate_json(msg.data).time
        except ValueError as exc:
            log.warning("the last stored log line of deployment %s is unreadable (%s); following from the start, "
                        "lines may repeat", deployment_id, exc)
            return None

    async def _follow(self, deployment_id: int, container_id: str | None, resume: bool) -> None:
        # On Swarm the service's log spans every task, old ones included: always continue after the last line.
        resume = resume or self.ctx.settings.engine == "swarm"
        since = await self._last_app_time(deployment_id) if resume else None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, datetime, str] | None] = asyncio.Queue()
        stop_flag = threading.Event()

        def pump() -> None:
            # Timestamps from the engine let a restarted relay continue exactly after the last stored line.
            try:
                client = docker_client(self.ctx.settings, timeout=3600 * 24 * 365)
            except PortsideError as exc:
                log.warning("logs of %s: %s", deployment_id, exc)
                loop.call_soon_threadsafe(queue.put_nowait, None)
                return
            try:
                after = since.timestamp() + 1e-6 if since is not None else None
                if self.ctx.settings.engine == "swarm":
                    # The app's service logs come from every task on every node, through the manager.
                    service = app_service(client, Owner.of(self.ctx.settings, deployment_id))
                    if service is None:
                        raise NotFound(f"no app service for deployment {deployment_id}")
                    # The engine takes fractional seconds (the SDK's hint says int): no line of that second twice.
                    chunks = client.api.service_logs(service.id, stdout=True, stderr=True, follow=True,
                                                     timestamps=True, since=cast(int, after))
                    source_id = service.id or ""
                else:
                    container = (
                        client.containers.get(container_id)
                        if container_id
                        else app_container(client, Owner.of(self.ctx.settings, deployment_id))
                    )
                    if container is None:
                        raise NotFound(f"no app container for deployment {deployment_id}")
                    chunks = container.logs(stream=True, follow=True, timestamps=True, since=after)
                    source_id = container.id or ""
                buffer = b""
                # Part of each line's id (a line relayed twice by two replicas is stored once).
                short_id = source_id[:12]
                limit = self.ctx.settings.max_log_line_bytes + 64  # the timestamp docker puts in front
                for chunk in chunks:
                    if stop_flag.is_set():
                        return
                    buffer += chunk
                    # An app that prints without a newline cannot grow this buffer past one line's bound.
                    while b"\n" in buffer or len(buffer) > limit:
                        if b"\n" in buffer[:limit]:
                            raw, buffer = buffer.split(b"\n", 1)
                        else:
                            raw, buffer = buffer[:limit], buffer[limit:]
                        text = raw.decode("utf-8", errors="replace")
                        stamp, _, line = text.partition(" ")
                        # The same line read by two replicas gets the same id: stored once.
                        digest = hashlib.blake2b(raw, digest_size=8).hexdigest()
                        msg_id = f"app:{deployment_id}:{short_id}:{stamp}:{digest}"
                        loop.call_soon_threadsafe(
                            queue.put_nowait, (line, parse_docker_time(stamp) or datetime.now(UTC), msg_id)
                        )
            except DockerException as exc:  # includes NotFound: the container is gone
                log.warning("logs of %s stopped: %s", deployment_id, exc)
            finally:
                client.close()
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = anyio.to_thread.run_sync(pump, abandon_on_cancel=True)
        pump_task = asyncio.ensure_future(worker)
        try:
            while (item := await queue.get()) is not None:
                line, when, msg_id = item
                await publish_log(
                    self.ctx.broker, self.ctx.settings,
                    LogLine(deployment_id=deployment_id, source="app", line=line, time=when), msg_id=msg_id,
                )
        finally:
            stop_flag.set()
            pump_task.cancel()

"""At start and every `reconcile_interval_seconds`, compare what runs (containers found by label) with what
Postgres says, and fix the difference, so nothing stays in a transitional status forever and no container
outlives its deployment. Every replica may run it: transitions are guarded and teardown is idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from sqlalchemy import select

from services.runner import swarm
from services.runner.engine import teardown
from services.runner.service import _route, mark_down
from shared.checkout import keep_in_use
from shared.config import Settings
from shared.db.models import Deployment
from shared.db.repository import record_event, transition
from shared.db.status import DeploymentStatus as S
from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE, docker_client
from shared.docker.containers import COMPOSE_SERVICE, list_containers
from shared.errors import ErrorCode, PortsideError
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

# A container may exist for these: it runs, is being replaced, or is being taken down.
MAY_HAVE_CONTAINERS = frozenset({S.QUEUED, S.BUILDING, S.STARTING, S.RUNNING, S.STOPPING})
STOPPING_GRACE = 120.0
WORKER_GRACE = 300.0


@dataclass
class Report:
    removed_leftovers: list[int] = field(default_factory=list)
    crashed: list[int] = field(default_factory=list)
    unstuck: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Seen:
    state: str
    exit_code: int | None
    # Why, where the engine says more than a state (Swarm's crash rule: services/runner/swarm.py crash_loop).
    reason: str | None = None


def _containers_by_deployment(settings: Settings) -> dict[int, dict[str, Seen]]:
    """deployment id -> {compose service: what its container is doing} for this installation; on Swarm, what
    its service's tasks are doing, on whichever node they run."""
    if settings.engine == "swarm":
        return {deployment: {name: Seen(seen.state, seen.exit_code, seen.reason) for name, seen in services.items()}
                for deployment, services in swarm.services_by_deployment(settings).items()}
    client = docker_client(settings, timeout=30)
    try:
        found: dict[int, dict[str, Seen]] = defaultdict(dict)
        mounted: list[str] = []
        for container in list_containers(client, {"label": f"{LABEL_INSTANCE}={settings.instance}"}):
            deployment = container.labels.get(LABEL_DEPLOYMENT, "")
            mounted += [str(m.get("Source")) for m in container.attrs.get("Mounts") or [] if m.get("Type") == "bind"]
            if deployment.isdigit():
                state = container.attrs.get("State", {})
                exit_code = state.get("ExitCode") if container.status in ("exited", "dead") else None
                found[int(deployment)][container.labels.get(COMPOSE_SERVICE, "")] = Seen(container.status, exit_code)
        # A checkout of this runner's (shared/checkout.py) that an app mounts stays while the app exists.
        keep_in_use(settings, mounted)
        return found
    finally:
        client.close()


def _stuck_rule(settings: Settings, status: str) -> tuple[float, S, ErrorCode, str] | None:
    """(seconds allowed in `status`, status to move to, code, reason) for transitional statuses."""
    rules = {
        S.QUEUED: (settings.queued_timeout_seconds, S.ERROR, ErrorCode.STUCK,
                   "no builder picked the job up; is a builder running (`portside up` starts one)?"),
        S.BUILDING: (settings.build_timeout_seconds + WORKER_GRACE, S.ERROR, ErrorCode.BUILD_TIMEOUT,
                     "the build never finished; its worker may have died. Deploy again."),
        S.STARTING: (settings.ready_timeout_seconds + WORKER_GRACE, S.CRASHED, ErrorCode.NOT_READY,
                     "the start never finished; its worker may have died. Deploy again."),
        S.GENERATING: (WORKER_GRACE, S.ERROR, ErrorCode.STUCK, "file generation never finished; generate again."),
    }
    return rules.get(S(status))


@dataclass(frozen=True)
class Recorded:
    """What Postgres says about one deployment, read in one pass."""

    id: int
    status: str
    app_service: str
    updated_at: datetime


async def _deployments(ctx: WorkerContext) -> dict[int, Recorded]:
    async with ctx.sessions() as session:
        rows = (await session.execute(
            select(Deployment.id, Deployment.status, Deployment.app_service, Deployment.updated_at)
        )).all()
    return {row.id: Recorded(row.id, row.status, row.app_service, row.updated_at) for row in rows}


def _unchanged(before: dict[int, Recorded], row: Recorded) -> bool:
    """The row is as it was before the engine was read: what the engine showed can be judged against it."""
    return before.get(row.id) == row


async def _remove_leftovers(ctx: WorkerContext, deployment_id: int) -> bool:
    """Take down what runs for a deployment that should have nothing running (or no longer exists). The row stays
    locked while the containers go, so a deploy asked for meanwhile waits for the teardown instead of losing its
    new containers to it; False when its status says it may run something after all."""
    async with ctx.sessions() as session:
        status = await session.scalar(
            select(Deployment.status).where(Deployment.id == deployment_id).with_for_update())
        if status is not None and S(status) in MAY_HAVE_CONTAINERS:
            return False
        await anyio.to_thread.run_sync(teardown, ctx.settings, deployment_id, False)
        if status is not None:
            await record_event(session, deployment_id, status, "the reconciler removed containers left running")
        await session.commit()
    return True


async def reconcile_once(ctx: WorkerContext) -> Report:
    settings = ctx.settings
    report = Report()
    # The engine is read between two reads of Postgres. Listing it takes a while on a busy machine, and a start
    # may become `running` meanwhile, its container created after the listing: a row that changed while the
    # engine was read is judged on the next pass, against a newer picture, never against this older one.
    before = await _deployments(ctx)
    try:
        running = await anyio.to_thread.run_sync(_containers_by_deployment, settings)
    except PortsideError as exc:
        log.warning("reconcile skipped: %s", exc.message)
        return report
    now = datetime.now(UTC)
    known = await _deployments(ctx)

    for deployment_id in running:
        row = known.get(deployment_id)
        if (row is None or S(row.status) not in MAY_HAVE_CONTAINERS) and await _remove_leftovers(ctx, deployment_id):
            report.removed_leftovers.append(deployment_id)

    for row in known.values():
        status = S(row.status)
        age = (now - row.updated_at).total_seconds()
        if status == S.RUNNING:
            seen = running.get(row.id, {}).get(row.app_service)
            if (seen is not None and seen.state in ("running", "restarting")) or not _unchanged(before, row):
                continue
            what = f"{seen.state} with exit code {seen.exit_code}" if seen else "gone"
            message = f"the app container is {what} (found by the reconciler)"
            if seen and seen.reason:
                message = (f"The app kept exiting (exit code {seen.exit_code}) after it was running: {seen.reason} "
                           "(found by the reconciler).")
            if await mark_down(ctx, row.id, S.RUNNING, S.CRASHED, message, ErrorCode.APP_CRASHED,
                               seen.exit_code if seen else None):
                report.crashed.append(row.id)
        elif status == S.STOPPING and age > STOPPING_GRACE:
            await anyio.to_thread.run_sync(teardown, settings, row.id, False)
            async with ctx.sessions() as session:
                await transition(session, row.id, S.STOPPED, "stop finished by the reconciler", stopped_at=now)
                await session.commit()
            report.unstuck.append(row.id)
        elif (rule := _stuck_rule(settings, row.status)) and age > rule[0]:
            _, target, code, reason = rule
            message = f"{row.status} for {age:.0f} s: {reason}"
            if target == S.CRASHED:
                applied = await mark_down(ctx, row.id, status, target, message, code)
            else:
                async with ctx.sessions() as session:
                    applied = (await transition(session, row.id, target, message, error_code=code,
                                                only_from=frozenset({status}))).applied
                    await session.commit()
            if applied:
                report.unstuck.append(row.id)
    if report.removed_leftovers or report.crashed or report.unstuck:
        log.info("reconciled: %s", report)
    # The proxy's routes, from Postgres: after a proxy restart (or a failed apply) they come back here. Caddy
    # skips a load identical to what it runs, so doing it every pass costs one request.
    await _route(ctx)
    return report


async def reconcile_forever(ctx: WorkerContext, wake: asyncio.Event | None = None) -> None:
    """At start, every interval, and whenever the Docker events stream reconnects (`wake`)."""
    while True:
        try:
            await reconcile_once(ctx)
        except Exception:
            log.exception("reconcile pass failed")
        if wake is None:
            await asyncio.sleep(ctx.settings.reconcile_interval_seconds)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), ctx.settings.reconcile_interval_seconds)
        wake.clear()

"""Every `metrics_interval_seconds`, read CPU, memory and network of each container of every running deployment
(every compose service, by its label) and keep them in Postgres for GET /api/deployments/{id}/metrics. A round is
stamped with the start of its interval, so replicas that sample the same round write one row (the unique key
drops the second); each deployment keeps its newest `metrics_history_samples` rounds."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import anyio
from docker.errors import DockerException
from requests import RequestException
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert

from shared import metrics
from shared.config import Settings
from shared.db.models import AppSample, Deployment
from shared.db.status import DeploymentStatus as S
from shared.docker import Owner, docker_client
from shared.docker.containers import COMPOSE_SERVICE, container_stats, deployment_containers
from shared.errors import PortsideError
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

# Stats of one container take the engine about a second (it measures CPU over an interval): read them in parallel.
STATS_THREADS = 8

_PRUNE = text(
    "DELETE FROM app_samples WHERE deployment_id = :deployment_id AND sampled_at < ("
    " SELECT min(sampled_at) FROM (SELECT DISTINCT sampled_at FROM app_samples"
    " WHERE deployment_id = :deployment_id ORDER BY sampled_at DESC LIMIT :keep) AS newest)"
)


@dataclass(frozen=True)
class Usage:
    deployment_id: int
    service: str
    cpu_percent: float | None
    memory_mb: float | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None


def round_start(now: float, interval: float) -> datetime:
    """The start of the interval `now` falls in: the stamp every replica gives this round."""
    return datetime.fromtimestamp(now - now % interval, UTC)


N = TypeVar("N", int, float)


def _add(x: N | None, y: N | None) -> N | None:
    return y if x is None else x if y is None else x + y


def merge(a: Usage, b: Usage) -> Usage:
    """Two containers of one service (a scaled service) count as one: their figures add up."""

    return Usage(a.deployment_id, a.service, _add(a.cpu_percent, b.cpu_percent), _add(a.memory_mb, b.memory_mb),
                 _add(a.network_rx_bytes, b.network_rx_bytes), _add(a.network_tx_bytes, b.network_tx_bytes))


def read_usage(settings: Settings, deployment_ids: list[int]) -> list[Usage]:
    """Figures of every running container of these deployments, one per (deployment, compose service)."""
    client = docker_client(settings, timeout=30)
    try:
        targets = []
        for deployment_id in deployment_ids:
            for container in deployment_containers(client, Owner.of(settings, deployment_id)):
                if container.status == "running":
                    service = container.labels.get(COMPOSE_SERVICE) or container.name or container.short_id
                    targets.append((deployment_id, service, container))
        with ThreadPoolExecutor(STATS_THREADS) as pool:
            stats = list(pool.map(lambda target: container_stats(target[2]), targets))
    finally:
        client.close()
    usage: dict[tuple[int, str], Usage] = {}
    for (deployment_id, service, _), figures in zip(targets, stats, strict=True):
        if figures.state != "running":
            continue
        row = Usage(deployment_id, service, figures.cpu_percent, figures.memory_mb,
                    figures.network_rx_bytes, figures.network_tx_bytes)
        key = (deployment_id, service)
        usage[key] = merge(usage[key], row) if key in usage else row
    return list(usage.values())


async def sample_once(ctx: WorkerContext, now: float | None = None) -> int:
    """One round: returns how many rows it wrote (0 when another replica already wrote this round)."""
    stamp = round_start(time.time() if now is None else now, ctx.settings.metrics_interval_seconds)
    async with ctx.sessions() as session:
        running = list((await session.scalars(select(Deployment.id).where(Deployment.status == S.RUNNING))).all())
    if not running:
        return 0
    usage = await anyio.to_thread.run_sync(read_usage, ctx.settings, running)
    if not usage:
        return 0
    async with ctx.sessions() as session:
        # A deployment deleted meanwhile has no row to refer to: keep only those that still exist, locked
        # against a delete until this round is written.
        alive = set((await session.scalars(
            select(Deployment.id).where(Deployment.id.in_({u.deployment_id for u in usage})).with_for_update(read=True)
        )).all())
        usage = [u for u in usage if u.deployment_id in alive]
        if not usage:
            return 0
        result = await session.execute(
            insert(AppSample)
            .values([{
                "deployment_id": u.deployment_id, "service": u.service, "sampled_at": stamp,
                "cpu_percent": u.cpu_percent, "memory_mb": u.memory_mb,
                "network_rx_bytes": u.network_rx_bytes, "network_tx_bytes": u.network_tx_bytes,
            } for u in usage])
            .on_conflict_do_nothing(constraint="uq_app_samples_round")
            .returning(AppSample.id)
        )
        written = len(result.all())
        for deployment_id in {u.deployment_id for u in usage}:
            keep = ctx.settings.metrics_history_samples
            await session.execute(_PRUNE, {"deployment_id": deployment_id, "keep": keep})
        await session.commit()
    metrics.APP_SAMPLES.inc(written)
    return written


async def sample_forever(ctx: WorkerContext) -> None:
    interval = ctx.settings.metrics_interval_seconds
    while True:
        try:
            await sample_once(ctx)
        except (PortsideError, DockerException, RequestException, OSError) as exc:
            log.warning("no usage samples this round: %s: %s", exc.__class__.__name__, exc)
        except Exception:
            log.exception("usage sampling round failed")
        # Wake at the next interval's start, so rounds keep their stamps however long reading took.
        await asyncio.sleep(interval - time.time() % interval + 0.01)

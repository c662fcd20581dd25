"""The disk janitor: every PORTSIDE_JANITOR_INTERVAL_SECONDS, each deployment keeps its newest
PORTSIDE_KEEP_IMAGES images (and those it runs or may roll back to), deleted deployments keep none, and untagged
images older than PORTSIDE_BUILD_CACHE_MAX_AGE_HOURS go. Only images carrying this installation's labels; on Swarm,
the same rule for its tags in PORTSIDE_REGISTRY. Unless PORTSIDE_BUILDKIT=off, BuildKit's cache mounts of deleted
deployments, and those unused for PORTSIDE_BUILD_CACHE_MAX_AGE_HOURS, go too (only those naming this installation)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import anyio
from sqlalchemy import select

from shared.db.models import Deployment
from shared.docker.client import engine_or_none
from shared.docker.containers import SweepReport, sweep_cache_mounts, sweep_images
from shared.docker.registry import sweep_registry
from shared.worker import WorkerContext

log = logging.getLogger(__name__)


async def sweep(ctx: WorkerContext) -> SweepReport | None:
    """One pass; None when no engine answers (the next pass tries again)."""
    settings = ctx.settings
    async with ctx.sessions() as session:
        rows = (await session.execute(select(
            Deployment.id, Deployment.image_tag, Deployment.running_image_tag, Deployment.previous_image_tag,
        ))).all()
    keep = {row.id: {t for t in (row.image_tag, row.running_image_tag, row.previous_image_tag) if t} for row in rows}
    cutoff = datetime.now(UTC) - timedelta(hours=settings.build_cache_max_age_hours)

    def on_engine() -> SweepReport | None:
        with engine_or_none(settings) as client:
            if client is None:
                return None
            report = sweep_images(client, settings.instance, keep, settings.keep_images, cutoff)
            if settings.buildkit != "off":
                # A deployment made after the read above is missing from `keep`; its cache is in use (never
                # removed) while its build runs, so only a build begun and ended within this pass could lose its
                # downloads, which its next build fetches again.
                report.removed_cache_mounts, report.freed_cache_bytes = sweep_cache_mounts(
                    client, settings.instance, set(keep), cutoff)
            return report

    report = await anyio.to_thread.run_sync(on_engine)
    if report is not None and (report.removed_tags or report.removed_untagged or report.removed_cache_mounts):
        log.info("janitor removed images %s and %d untagged, and BuildKit cache mounts %s (%.1f MB)",
                 ", ".join(report.removed_tags) or "none", len(report.removed_untagged),
                 ", ".join(report.removed_cache_mounts) or "none", report.freed_cache_bytes / 1024**2)
    if settings.engine == "swarm" and settings.registry:
        # The same rule in the registry the nodes pull from; its disk is freed by its garbage collector.
        pruned = await anyio.to_thread.run_sync(sweep_registry, settings.registry, settings.instance, keep,
                                                settings.keep_images)
        if pruned.removed:
            log.info("janitor removed from the registry %s", ", ".join(pruned.removed))
        for problem in pruned.problems:
            log.warning("janitor: registry tags not removed: %s", problem)
    return report


async def janitor_loop(ctx: WorkerContext) -> None:
    while True:
        await anyio.sleep(ctx.settings.janitor_interval_seconds)
        try:
            await sweep(ctx)
        except Exception:  # a failed pass must not end the loop; the next one tries again
            log.exception("janitor pass failed")

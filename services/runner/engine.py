"""Engine calls of the runner: what asks Docker directly (is the app running, take a deployment down, prune
its old images, read a failed `up`). The single engine (docker compose) is here; with PORTSIDE_ENGINE=swarm each
call goes to swarm.py instead, and service.py starts a stack there."""

from __future__ import annotations

import logging

from services.runner import swarm
from shared.config import Settings
from shared.docker import Owner
from shared.docker.client import engine_or_none
from shared.docker.compose import ComposeResult, run_compose
from shared.docker.containers import app_container, prune_images, remove_deployment_resources

log = logging.getLogger(__name__)


def _port_conflict(result: ComposeResult) -> bool:
    text = result.stderr.lower()
    return "port is already allocated" in text or "address already in use" in text or "is already in use by" in text


def _app_running(settings: Settings, deployment_id: int, service: str) -> bool:
    if settings.engine == "swarm":
        return swarm.app_running(settings, deployment_id, service)
    with engine_or_none(settings, timeout=30) as client:
        if client is None:
            return False
        container = app_container(client, Owner.of(settings, deployment_id), service)
        return container is not None and container.status == "running"


def _prune_images(settings: Settings, deployment_id: int, keep: set[str], keep_newest: int | None = None) -> None:
    with engine_or_none(settings) as client:
        if client is None:
            return
        newest = settings.keep_images if keep_newest is None else keep_newest
        removed = prune_images(client, Owner.of(settings, deployment_id), keep, newest)
        if removed:
            log.info("deployment %s: removed old images %s", deployment_id, ", ".join(removed))


def teardown(settings: Settings, deployment_id: int, volumes: bool) -> None:
    """`compose down` by project name (works without the file), then anything left with our label; on Swarm,
    `docker stack rm` and its leftovers."""
    if settings.engine == "swarm":
        swarm.teardown(settings, deployment_id, volumes)
        return
    args = ["down", "--remove-orphans", "--timeout", "10"] + (["--volumes"] if volumes else [])
    owner = Owner.of(settings, deployment_id)
    run_compose(settings, owner.project, [], args)
    with engine_or_none(settings) as client:
        if client is not None:
            remove_deployment_resources(client, owner, volumes=volumes)

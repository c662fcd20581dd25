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
from shared.docker.containers import (
    app_container,
    app_containers,
    container_address,
    prune_images,
    remove_container,
    remove_deployment_resources,
)
from shared.docker.registry import prune_registry

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
    """The deployment's images except the newest `keep_newest` (PORTSIDE_KEEP_IMAGES) and `keep`, from this
    engine and, on Swarm, from PORTSIDE_REGISTRY (where the nodes pull them), by the same rule, so a rollback
    finds what it needs in both places."""
    owner = Owner.of(settings, deployment_id)
    newest = settings.keep_images if keep_newest is None else keep_newest
    with engine_or_none(settings) as client:
        if client is not None:
            removed = prune_images(client, owner, keep, newest)
            if removed:
                log.info("deployment %s: removed old images %s", deployment_id, ", ".join(removed))
    if owner.registry:
        pruned = prune_registry(owner.registry, owner, keep, newest)
        if pruned.removed:
            log.info("deployment %s: removed from the registry %s", deployment_id, ", ".join(pruned.removed))
        for problem in pruned.problems:
            log.warning("deployment %s: registry tags not removed: %s", deployment_id, problem)


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


def _serving(settings: Settings, deployment_id: int, service: str) -> frozenset[str]:
    """Ids of the app's running containers: what keeps serving while a redeploy starts the new one beside them."""
    with engine_or_none(settings, timeout=30) as client:
        if client is None:
            return frozenset()
        return frozenset(str(c.id) for c in app_containers(client, Owner.of(settings, deployment_id), service)
                         if c.status == "running")


def _address(settings: Settings, container_id: str) -> str | None:
    with engine_or_none(settings, timeout=30) as client:
        if client is None:
            return None
        return container_address(client.containers.get(container_id))


def _remove_containers(settings: Settings, deployment_id: int, service: str, keep: frozenset[str]) -> list[str]:
    """Remove the app's containers except `keep`: the old version after the switch, or a new one that never got
    healthy. Found by label, so only this deployment's containers are touched."""
    removed: list[str] = []
    with engine_or_none(settings) as client:
        if client is None:
            return removed
        for container in app_containers(client, Owner.of(settings, deployment_id), service):
            if container.id in keep:
                continue
            if remove_container(container):
                removed.append(str(container.id))
    return removed

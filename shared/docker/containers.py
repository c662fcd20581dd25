"""Finding, inspecting and removing what Portside runs, always by label."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.models.images import Image

from shared.docker.client import CACHE_ID_VAR, ENGINE_ERRORS, LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_MANAGED, Owner

log = logging.getLogger(__name__)

COMPOSE_SERVICE = "com.docker.compose.service"
SWARM_SERVICE = "com.docker.swarm.service.name"
STACK_NAMESPACE = "com.docker.stack.namespace"
# On a Swarm service of Portside's edge proxy (not the app's own): the name of the service it forwards to.
LABEL_EDGE = "org.portside.edge"


def list_containers(client: docker.DockerClient, filters: dict[str, Any]) -> list[Container]:
    """Every container (running or not) that matches `filters`. The engine lists, then each one is inspected: one
    removed in between (a Swarm task being replaced, a stack coming down) is left out rather than raising NotFound."""
    return client.containers.list(all=True, filters=filters, ignore_removed=True)


def deployment_containers(client: docker.DockerClient, owner: Owner) -> list[Container]:
    return list_containers(client, owner.filters)


def service_of(labels: dict[str, str]) -> str | None:
    """The compose service a container belongs to; for a Swarm task, its stack service without the stack prefix."""
    if COMPOSE_SERVICE in labels:
        return labels[COMPOSE_SERVICE]
    name, stack = labels.get(SWARM_SERVICE), labels.get(STACK_NAMESPACE)
    return name.removeprefix(f"{stack}_") if name and stack else None


def app_container(client: docker.DockerClient, owner: Owner, service: str = "app") -> Container | None:
    """The container of the compose service that serves the app (`app` unless the repo's own compose names it).
    On Swarm a swap runs an old and a new task side by side: a running one first."""
    found = [c for c in deployment_containers(client, owner) if service_of(c.labels) in (service, None)]
    return next((c for c in found if c.status == "running"), found[0] if found else None)


def app_containers(client: docker.DockerClient, owner: Owner, service: str = "app") -> list[Container]:
    """Every container of the app's service: two for a moment while a redeploy starts the new one beside the old."""
    return [c for c in deployment_containers(client, owner) if c.labels.get(COMPOSE_SERVICE, service) == service]


def container_address(container: Container) -> str | None:
    """The container's IP on its (first) network: where the proxy and the health check reach it."""
    networks = container.attrs.get("NetworkSettings", {}).get("Networks") or {}
    return next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)


def logs_tail(container: Container, lines: int = 50) -> list[str]:
    try:
        raw = container.logs(tail=lines, stdout=True, stderr=True)
    except DockerException as exc:  # the caller's message goes out without the last lines
        log.info("no log tail for container %s: %s", container.short_id, exc)
        return []
    return raw.decode("utf-8", errors="replace").splitlines()


def remove_container(container: Container) -> bool:
    """Force-remove a container; False if it was already gone or another remover (Swarm's agent, a second
    clean-up) is removing it now: the engine answers that one 409 "removal ... already in progress"."""
    try:
        container.remove(force=True)
        return True
    except NotFound:
        return False
    except APIError as exc:
        if exc.status_code == 409 and "already in progress" in str(exc):
            return False
        raise


def remove_deployment_resources(client: docker.DockerClient, owner: Owner, volumes: bool = False) -> int:
    """Remove every container (and network; volumes only if asked) labelled with the deployment. Returns
    how many containers were removed. Used after `compose down`, in case files were edited or lost."""
    removed = 0
    for container in deployment_containers(client, owner):
        removed += remove_container(container)
    for network in client.networks.list(filters=owner.filters):
        try:
            network.remove()
        except NotFound:
            continue
        except DockerException as exc:  # left for the next clean-up (the reconciler, or a delete)
            log.warning("network %s of deployment %s stays: %s", network.name, owner.deployment_id, exc)
    if volumes:
        for volume in client.volumes.list(filters=owner.filters):
            try:
                volume.remove(force=True)
            except NotFound:
                continue
            except DockerException as exc:
                log.warning("volume %s of deployment %s stays: %s", volume.name, owner.deployment_id, exc)
    return removed


@dataclass(frozen=True)
class ContainerStats:
    state: str
    health: str | None
    exit_code: int | None
    started_at: datetime | None
    uptime_seconds: float | None
    cpu_percent: float | None
    memory_mb: float | None
    memory_limit_mb: float | None
    network_rx_bytes: int | None
    network_tx_bytes: int | None
    ip_address: str | None
    ports: dict[str, list[str]]


def parse_docker_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python parses microseconds.
    head, _, rest = value.partition(".")
    frac = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        return datetime.fromisoformat(f"{head.rstrip('Z')}.{frac or '0'}+00:00").astimezone(UTC)
    except ValueError:
        return None


def container_stats(container: Container) -> ContainerStats:
    """State from inspect, usage from one stats sample (the engine computes it over ~1 s). A container removed
    meanwhile (a deployment stopping) reads as state "removed" without figures; never an error."""
    try:
        container.reload()
    except NotFound:
        return ContainerStats("removed", None, None, None, None, None, None, None, None, None, None, {})
    attrs = container.attrs
    state = attrs.get("State", {})
    started = parse_docker_time(state.get("StartedAt"))
    running = state.get("Status") == "running"
    cpu = mem = limit = rx = tx = None
    if running:
        try:
            sample = container.stats(stream=False)
            if not isinstance(sample, dict):
                raise TypeError(f"stats answered {type(sample).__name__}, not one sample")
            cpu = _cpu_percent(sample)
            usage = sample.get("memory_stats", {})
            cache = usage.get("stats", {}).get("cache", 0) or usage.get("stats", {}).get("inactive_file", 0)
            if "usage" in usage:
                mem = round((usage["usage"] - cache) / 1024 / 1024, 2)
                limit = round(usage.get("limit", 0) / 1024 / 1024, 2)
            nets = sample.get("networks") or {}
            rx = sum(n.get("rx_bytes", 0) for n in nets.values())
            tx = sum(n.get("tx_bytes", 0) for n in nets.values())
        except (DockerException, ValueError, TypeError) as exc:
            # A container being removed answers stats with an empty body (a JSON error): no figures, no error.
            log.info("no usage figures for container %s: %s: %s", container.short_id, exc.__class__.__name__, exc)
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    ports = {
        k: [f"{b.get('HostIp')}:{b.get('HostPort')}" for b in (v or [])]
        for k, v in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items()
    }
    return ContainerStats(
        state=state.get("Status", "unknown"),
        health=(state.get("Health") or {}).get("Status"),
        exit_code=state.get("ExitCode") if not running else None,
        started_at=started,
        uptime_seconds=round((datetime.now(UTC) - started).total_seconds(), 1) if running and started else None,
        cpu_percent=cpu,
        memory_mb=mem,
        memory_limit_mb=limit,
        network_rx_bytes=rx,
        network_tx_bytes=tx,
        ip_address=ip,
        ports=ports,
    )


def _cpu_percent(sample: dict) -> float | None:
    cpu, pre = sample.get("cpu_stats", {}), sample.get("precpu_stats", {})
    try:
        cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except KeyError:
        return None
    cpus = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or [1])
    if system_delta <= 0 or cpu_delta < 0:
        return 0.0
    return round(cpu_delta / system_delta * cpus * 100, 2)


def prune_images(client: docker.DockerClient, owner: Owner, keep_tags: set[str], keep_newest: int) -> list[str]:
    """Remove the deployment's images except the newest `keep_newest` and those tagged in `keep_tags`.
    Removes by tag, never by id: an id can be shared with a tagged base image."""
    images = sorted(
        (i for i in client.images.list(filters={"label": owner.filters["label"]}) if _own_tags(i, owner)),
        key=lambda i: i.attrs.get("Created", ""),
        reverse=True,
    )
    removed: list[str] = []
    for index, image in enumerate(images):
        tags = _own_tags(image, owner)
        if index < keep_newest or any(t in keep_tags for t in tags):
            continue
        for tag in tags:
            try:
                client.images.remove(tag)
                removed.append(tag)
            except NotFound:
                continue
            except DockerException as exc:  # e.g. still used by a container; pruned on a later pass
                log.info("image %s stays: %s", tag, exc)
    return removed


def _own_tags(image: Image, owner: Owner) -> list[str]:
    return [t for t in image.tags if t.startswith(owner.image_repo + ":")]


@dataclass
class SweepReport:
    removed_tags: list[str]
    removed_untagged: list[str]
    # The cache ids of the BuildKit cache mount records removed, and the bytes the engine says that freed.
    removed_cache_mounts: list[str] = field(default_factory=list)
    freed_cache_bytes: int = 0


def sweep_images(
    client: docker.DockerClient,
    instance: str,
    keep_tags: dict[int, set[str]],
    keep_newest: int,
    untagged_older_than: datetime,
) -> SweepReport:
    """The disk janitor's pass over every image this installation labelled: each deployment in `keep_tags`
    (deployment id -> tags in use) keeps its newest `keep_newest` and its tags in use; a deployment not in it
    (deleted) keeps none; untagged ones (a rebuilt tag's old image) go once older than `untagged_older_than`.
    Nothing without the installation's label is looked at."""
    report = SweepReport([], [])
    labelled = client.images.list(filters={"label": [f"{LABEL_MANAGED}=true", f"{LABEL_INSTANCE}={instance}"]})
    deployments = {int(d) for i in labelled if (d := (i.labels or {}).get(LABEL_DEPLOYMENT, "")).isdigit()}
    for deployment_id in sorted(deployments):
        owner = Owner(instance, deployment_id)
        kept = keep_tags.get(deployment_id)
        report.removed_tags += prune_images(client, owner, kept or set(), keep_newest if kept is not None else 0)
    for image in labelled:
        created = parse_docker_time(image.attrs.get("Created"))
        if image.tags or created is None or created >= untagged_older_than:
            continue
        try:
            client.images.remove(str(image.id))  # untagged: no tagged image can share its id
            report.removed_untagged.append(image.short_id)
        except NotFound:
            continue
        except DockerException as exc:  # a parent of a kept image, or in use: a later pass tries again
            log.info("untagged image %s stays: %s", image.short_id, exc)
    return report


# The cache id a BuildKit cache mount record names (Owner.cache_id): in the command, where the builder puts it
# (BuildKit 0.8 in Docker 20.10 records no id), or at the end, where newer BuildKit adds ` with id "<id>"`
# (solver/llbsolver/mounts/mount.go: "cached mount %s from %s", then " with id %q").
_MARKED_RE = re.compile(rf"^cached mount \S+ from exec (?:\S+ )+?-c {CACHE_ID_VAR}=(\S+) ")
_NAMED_RE = re.compile(r'^cached mount \S+ from .* with id "([^"]+)"$')
# Parsed from the right: the instance may hold hyphens and digits, a deployment id is digits, a tool letters.
_CACHE_ID_RE = re.compile(r"portside-(.+)-(\d+)-([a-z]+)")
_RECORD_ID_RE = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class CacheMount:
    """A BuildKit cache mount record (from `client.df()["BuildCache"]`) that belongs to one of this
    installation's deployments."""

    record_id: str
    cache_id: str
    deployment_id: int
    size: int
    last_used: datetime | None


def stale_cache_mounts(records: Iterable[dict[str, Any]], instance: str, deployments: set[int],
                       unused_since: datetime) -> list[CacheMount]:
    """The cache mounts of this installation whose deployment is not in `deployments` (deleted), or that were last
    used before `unused_since`. A record in use, of another installation or not made by Portside is never one."""
    stale: list[CacheMount] = []
    for record in records:
        description, record_id = str(record.get("Description") or ""), str(record.get("ID") or "")
        if record.get("Type") != "exec.cachemount" or record.get("InUse") or not _RECORD_ID_RE.fullmatch(record_id):
            continue
        named = _MARKED_RE.match(description) or _NAMED_RE.match(description)
        owner = _CACHE_ID_RE.fullmatch(named[1]) if named else None
        if owner is None or owner[1] != instance:
            continue
        last_used = parse_docker_time(record.get("LastUsedAt"))
        deployment_id = int(owner[2])
        if deployment_id in deployments and (last_used is None or last_used >= unused_since):
            continue
        stale.append(CacheMount(record_id, owner[0], deployment_id, int(record.get("Size") or 0), last_used))
    return stale


def build_cache_records(client: docker.DockerClient, attempts: int = 5) -> list[dict[str, Any]]:
    """`client.df()["BuildCache"]`. The engine runs one disk usage count at a time and refuses a second one
    ("a disk usage operation is already running", a 500): that one is asked again after a second."""
    for attempt in range(attempts):
        try:
            return list(client.df().get("BuildCache") or [])
        except APIError as exc:
            if "already running" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(1)
    return []


def sweep_cache_mounts(client: docker.DockerClient, instance: str, deployments: set[int],
                       unused_since: datetime) -> tuple[list[str], int]:
    """The disk janitor's pass over BuildKit's cache mounts (see stale_cache_mounts): the cache ids of the records
    removed, and the bytes freed. Each goes alone, by its whole id: the engine matches the `id` filter as a regular
    expression, so a bare id would also remove every record whose id contains it."""
    try:
        records = build_cache_records(client)
    except ENGINE_ERRORS as exc:  # the next pass tries again
        log.info("no build cache listing for the janitor: %s", exc)
        return [], 0
    removed: list[str] = []
    freed = 0
    for mount in stale_cache_mounts(records, instance, deployments, unused_since):
        try:
            # (The SDK's stubs list only `dangling` and `until`; the engine takes every field of a record.)
            pruned = client.api.prune_builds(filters={"id": f"^{mount.record_id}$"})  # type: ignore[arg-type]
        except ENGINE_ERRORS as exc:  # the engine failing (a record a build took meanwhile is just not deleted)
            log.warning("cache mount %s (%s) stays: %s", mount.record_id, mount.cache_id, exc)
            continue
        if mount.record_id in (pruned.get("CachesDeleted") or []):
            removed.append(mount.cache_id)
            freed += int(pruned.get("SpaceReclaimed") or 0)
    return removed, freed


def last_exit_code(client: docker.DockerClient, container: Container) -> int | None:
    """The exit code of the container's last `die`. State.ExitCode is reset when a restart policy brings the
    container back, so ask the engine's event log instead."""
    state = container.attrs.get("State", {})
    if state.get("Status") in ("exited", "dead"):
        return int(state.get("ExitCode") or 0)
    created = parse_docker_time(container.attrs.get("Created"))
    since = int(created.timestamp()) if created else None
    until = int(datetime.now(UTC).timestamp()) + 1
    code = None
    try:
        for event in client.events(since=since, until=until, decode=True,
                                   filters={"container": container.id, "event": "die"}):
            raw = event.get("Actor", {}).get("Attributes", {}).get("exitCode")
            if raw is not None and raw.lstrip("-").isdigit():
                code = int(raw)
    except DockerException:
        return int(state.get("ExitCode") or 0) or None
    return code


@dataclass(frozen=True)
class TaskState:
    """The app's Swarm service as the manager sees it, wherever its tasks run."""

    service_id: str
    state: str  # of the best task: running, starting, failed, ...
    container_id: str | None
    node_id: str | None
    running: int
    desired: int
    # Running tasks per node (host name), and the node the engine Portside talks to is: the engine reports CPU,
    # memory and network only for its own containers.
    nodes: dict[str, int] = field(default_factory=dict)
    this_node: str | None = None

    @property
    def elsewhere(self) -> dict[str, int]:
        return {node: count for node, count in self.nodes.items() if node != self.this_node}


def _service_labels(service: Any) -> dict[str, str]:
    return service.attrs.get("Spec", {}).get("Labels") or {}


def app_service(client: docker.DockerClient, owner: Owner) -> Any | None:
    """The stack service that publishes the deployment's port (the app), else the stack's only one. With
    Portside's edge proxy (PORTSIDE_SWARM_PUBLISH=edge) the edge publishes the port and names the app."""
    services = client.services.list(filters={"label": f"{STACK_NAMESPACE}={owner.project}"})
    apps = [s for s in services if LABEL_EDGE not in _service_labels(s)]
    upstreams = {f"{owner.project}_{_service_labels(s)[LABEL_EDGE]}" for s in services if s not in apps}
    named = [s for s in apps if s.name in upstreams]
    published = [s for s in apps if (s.attrs.get("Spec", {}).get("EndpointSpec") or {}).get("Ports")]
    found = named or published or apps
    return found[0] if found else None


# Desired states of a task Swarm means to run: `ready` is a replacement waiting out restart_policy's delay.
WANTED_TASK_STATES = frozenset({"ready", "running"})


def app_task_state(client: docker.DockerClient, owner: Owner) -> TaskState | None:
    service = app_service(client, owner)
    if service is None:
        return None
    tasks = [t for t in service.tasks() if t.get("DesiredState") in WANTED_TASK_STATES]
    best = next((t for t in tasks if t.get("Status", {}).get("State") == "running"), tasks[0] if tasks else None)
    desired = int((service.attrs.get("Spec", {}).get("Mode", {}).get("Replicated") or {}).get("Replicas") or 1)
    running = sum(1 for t in tasks if t.get("Status", {}).get("State") == "running")
    names = {str(n.id): str((n.attrs.get("Description") or {}).get("Hostname") or str(n.id)[:12])
             for n in client.nodes.list()}
    this_node = names.get(str((client.info().get("Swarm") or {}).get("NodeID") or ""))
    nodes: dict[str, int] = {}
    for task in tasks:
        if task.get("Status", {}).get("State") == "running":
            node = names.get(str(task.get("NodeID")), str(task.get("NodeID") or "?")[:12])
            nodes[node] = nodes.get(node, 0) + 1
    if best is None:
        return TaskState(service.id, "no task", None, None, 0, desired, nodes, this_node)
    status = best.get("Status", {})
    return TaskState(service.id, str(status.get("State")), (status.get("ContainerStatus") or {}).get("ContainerID"),
                     best.get("NodeID"), running, desired, nodes, this_node)

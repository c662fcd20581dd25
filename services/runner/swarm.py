"""Engine calls of the runner with PORTSIDE_ENGINE=swarm: the checked, resolved model becomes a Swarm stack file
(`docker stack deploy`), and the runner watches the stack's services and tasks (not containers, which may run on
any node). Swarm does the health-gated swap itself: update_config order start-first, failure_action rollback."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from shared.config import Settings
from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE, Owner, docker_client
from shared.docker.build import push_image
from shared.docker.client import engine_or_none
from shared.docker.compose import ComposeResult
from shared.docker.containers import (
    LABEL_EDGE,
    STACK_NAMESPACE,
    WANTED_TASK_STATES,
    list_containers,
    remove_deployment_resources,
)
from shared.errors import ErrorCode, PortsideError

log = logging.getLogger(__name__)

# Keys a Swarm service takes from a resolved compose service as they are. Everything else Compose resolved is
# either translated below (ports, deploy, volumes, networks) or has no meaning on Swarm and is left out
# (build: the image is in the registry; restart: deploy.restart_policy; depends_on: Swarm starts all at once).
STACK_SERVICE_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "healthcheck", "labels", "working_dir", "user", "hostname",
    "stop_grace_period", "stop_signal", "tmpfs", "read_only", "init", "ulimits", "cap_drop", "sysctls", "dns",
    "dns_search", "dns_opt", "extra_hosts", "stdin_open", "tty", "logging",
})
# Where the app's readiness comes from on Swarm: a health check inside the task, so it is checked where the app
# runs (any node) and Swarm routes to a new task only once it passed. The first HTTP client the image has asks
# 127.0.0.1:<port>; any HTTP answer counts, as for the single engine. An image with none of them (or no shell)
# cannot be checked: it counts as ready once it runs.
PROBE = (
    'if command -v python3 >/dev/null 2>&1; then python3 -c "import socket; s = socket.create_connection('
    "('127.0.0.1', {port}), 2); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); assert s.recv(5) == b'HTTP/'\"; "
    'elif command -v node >/dev/null 2>&1; then node -e "require(\'http\').get(\'http://127.0.0.1:{port}/\', '
    '() => process.exit(0)).on(\'error\', () => process.exit(1))"; '
    "elif command -v curl >/dev/null 2>&1; then curl -s -o /dev/null --max-time 2 http://127.0.0.1:{port}/; "
    "elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null -T 2 http://127.0.0.1:{port}/; "
    "else true; fi"
)

# Task states that mean the app's own process ended (Swarm then starts a replacement, restart_policy any).
EXITED = frozenset({"failed", "complete"})

EDGE_DIR = Path(__file__).with_name("edge")
EDGE_PREFIX = "portside-edge-"


def uses_edge(settings: Settings) -> bool:
    """Whether apps are reached through Portside's edge proxy instead of the routing mesh. The mesh balances
    with IPVS; without it (no /proc/net/ip_vs) a mesh port and a service's virtual IP carry nothing."""
    if settings.swarm_publish == "auto":
        return not Path("/proc/net/ip_vs").exists()
    return settings.swarm_publish == "edge"


def edge_image_tag(settings: Settings) -> str:
    """The edge image's name in the registry, its tag derived from the files it is built from."""
    digest = hashlib.sha256()
    for name in ("Dockerfile", "Caddyfile"):
        digest.update((EDGE_DIR / name).read_bytes())
    return f"{settings.registry}/portside/edge:{digest.hexdigest()[:12]}"


def ensure_edge_image(settings: Settings) -> str:
    """The edge image in the registry (built on the manager's engine and pushed the first time). Blocking."""
    tag = edge_image_tag(settings)
    client = docker_client(settings)
    try:
        try:
            client.images.get_registry_data(tag)
            return tag
        except DockerException:
            pass  # not in the registry yet
        try:
            client.images.get(tag)  # built here already (or loaded): only the push is missing
        except DockerException:
            _build_edge_image(client, settings, tag)
        push_image(client, tag, lambda line: log.info("edge image: %s", line.text))
        return tag
    finally:
        client.close()


def _build_edge_image(client: docker.DockerClient, settings: Settings, tag: str) -> None:
    try:
        client.images.build(path=str(EDGE_DIR), tag=tag, rm=True, forcerm=True,
                            labels={LABEL_INSTANCE: settings.instance})
    except DockerException as exc:
        raise PortsideError(ErrorCode.BASE_IMAGE_UNAVAILABLE,
                            f"The edge proxy image (debian:bookworm-slim with Debian's caddy) could not be built "
                            f"on the manager: {exc}. Make debian:bookworm-slim available there (`make images`) "
                            "or set PORTSIDE_SWARM_PUBLISH=mesh where the kernel has IPVS.") from exc


def _seconds(value: float) -> str:
    return f"{value:g}s"


def render_stack(
    model: dict[str, Any], settings: Settings, owner: Owner, app_service: str, edge_image: str | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The stack file for `docker stack deploy` and what was left out, from the model resolve_and_check() passed:
    the policy holds, because only Swarm's own scheduling keys are added to what was checked. With `edge_image`,
    no port goes on the mesh: every service is dnsrr and Portside's edge service publishes the ports instead."""
    labels = owner.labels
    services: dict[str, Any] = {}
    edges: dict[str, Any] = {}
    warnings: list[str] = []
    for name, service in (model.get("services") or {}).items():
        # Compose prints unset keys as null (`entrypoint: null`); Swarm's schema refuses those.
        out: dict[str, Any] = {k: copy.deepcopy(v) for k, v in service.items()
                               if k in STACK_SERVICE_KEYS and v is not None}
        dropped = sorted(set(service) - STACK_SERVICE_KEYS - {"ports", "deploy", "volumes", "networks", "build",
                                                               "restart", "depends_on", "image", "pull_policy"})
        if dropped:
            warnings.append(f"services.{name}: {', '.join(dropped)}: no meaning on Swarm, left out.")
        out["labels"] = {**(service.get("labels") or {}), **labels}
        # Values stay as Compose printed them: a literal `$` is already `$$`, and `docker stack deploy`
        # interpolates once more, exactly as `compose up` does with the single engine.
        ports = [
            {"target": int(p["target"]), "published": int(p["published"]), "protocol": p.get("protocol") or "tcp",
             "mode": "ingress"}
            for p in service.get("ports") or [] if isinstance(p, dict) and p.get("published")
        ]
        if ports and edge_image is None:
            out["ports"] = ports
        volumes = []
        for mount in service.get("volumes") or []:
            if isinstance(mount, dict) and mount.get("type") == "volume":
                volumes.append({k: mount[k] for k in ("type", "source", "target", "read_only") if k in mount})
            elif isinstance(mount, dict):
                # A host path exists on the manager only; a task on another node would not find it.
                warnings.append(f"services.{name}.volumes: the {mount.get('type')} mount of {mount.get('source')} "
                                "is left out on Swarm (tasks may run on any node); use a named volume.")
        if volumes:
            out["volumes"] = volumes
        if service.get("networks"):
            out["networks"] = sorted(service["networks"])
        deploy = service.get("deploy") or {}
        resources = deploy.get("resources") or {}
        limits = {k: str(v) for k, v in (resources.get("limits") or {}).items() if k in ("cpus", "memory") and v}
        # Two tasks on one data volume (a database) must not overlap: those swap stop-first.
        order = "stop-first" if volumes else "start-first"
        swarm_deploy: dict[str, Any] = {
            "mode": "replicated",
            "replicas": int(deploy.get("replicas") or 1),
            "labels": labels,
            "restart_policy": {"condition": "any", "delay": "2s"},
            # The health-gated swap: the new task starts beside the old one, Swarm routes to it once healthy,
            # and a task that fails within `monitor` rolls the whole service back to the previous spec.
            "update_config": {"parallelism": 1, "order": order, "failure_action": "rollback",
                              "monitor": _seconds(settings.swarm_monitor_seconds), "max_failure_ratio": 0},
            "rollback_config": {"parallelism": 1, "order": order, "failure_action": "pause",
                                "monitor": _seconds(settings.swarm_monitor_seconds)},
        }
        if limits:
            swarm_deploy["resources"] = {"limits": limits}
        constraints = (deploy.get("placement") or {}).get("constraints")
        if constraints:
            swarm_deploy["placement"] = {"constraints": [str(c) for c in constraints]}
        if edge_image is not None:
            # Without IPVS a virtual IP carries nothing, for the edge and between the stack's own services
            # alike: names resolve to the tasks' own addresses instead.
            swarm_deploy["endpoint_mode"] = "dnsrr"
            for port in ports:
                edges[f"{EDGE_PREFIX}{port['published']}"] = _edge_service(
                    edge_image, name, port, out.get("networks"), labels)
        out["deploy"] = swarm_deploy
        if name == app_service and ports and not service.get("healthcheck"):
            out["healthcheck"] = {
                "test": ["CMD-SHELL", PROBE.format(port=ports[0]["target"])],
                # Tolerant of a slow probe on a loaded node: unhealthy after about 5 failures in a row.
                "interval": "3s", "timeout": "5s", "retries": 5,
                "start_period": _seconds(settings.swarm_health_start_seconds),
            }
        services[name] = out
    clash = sorted(set(edges) & set(services))
    if clash:
        raise PortsideError(ErrorCode.POLICY_VIOLATION, f"services.{clash[0]}: the name is Portside's edge proxy's "
                            f"on Swarm; rename the service (names starting {EDGE_PREFIX} are reserved).")
    services.update(edges)
    stack: dict[str, Any] = {"version": "3.9", "services": services}
    networks = {}
    for key in model.get("networks") or {"default": {}}:
        networks[key] = {"driver": "overlay", "labels": labels}
    stack["networks"] = networks
    named = {key: {"labels": labels} for key in model.get("volumes") or {}}
    if named:
        stack["volumes"] = named
    return stack, warnings


def _edge_service(
    image: str, upstream: str, port: dict[str, Any], networks: list[str] | None, labels: dict[str, str]
) -> dict[str, Any]:
    """One edge task per manager: the port published in host mode on that node (no IPVS needed), forwarded to
    `upstream`'s tasks over the networks it shares with them."""
    edge_labels = {**labels, LABEL_EDGE: upstream}
    service: dict[str, Any] = {
        "image": image,
        "environment": {"PORTSIDE_EDGE_PORT": str(port["published"]), "PORTSIDE_EDGE_UPSTREAM": upstream,
                        "PORTSIDE_EDGE_UPSTREAM_PORT": str(port["target"])},
        "ports": [{"target": port["published"], "published": port["published"], "protocol": port["protocol"],
                   "mode": "host"}],
        "labels": edge_labels,
        "cap_drop": ["ALL"],
        "deploy": {
            "mode": "global", "endpoint_mode": "dnsrr", "labels": edge_labels,
            "placement": {"constraints": ["node.role == manager"]},
            "restart_policy": {"condition": "any", "delay": "2s"},
            # A host-mode port is held by one task per node: the old edge task must go before the new one binds.
            "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"},
            "resources": {"limits": {"cpus": "0.5", "memory": "64M"}},
        },
    }
    if networks:
        service["networks"] = list(networks)
    return service


# ---- the engine ----------------------------------------------------------------------------------------------

def _docker_cli() -> str:
    found = shutil.which("docker")
    if not found:
        raise PortsideError(ErrorCode.TOOL_MISSING, "PORTSIDE_ENGINE=swarm needs the docker command line client "
                                                    "(`docker stack deploy`); install Debian's docker.io.")
    return found


def _cli(settings: Settings, args: list[str], stdin: str | None = None, timeout: float = 300) -> ComposeResult:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_CONFIG") if key in os.environ}
    if settings.docker_host:
        env["DOCKER_HOST"] = settings.docker_host
    try:
        proc = subprocess.run([_docker_cli(), *args], input=stdin, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return ComposeResult(124, "", f"timed out: docker {' '.join(args)}")
    return ComposeResult(proc.returncode, proc.stdout, proc.stderr)


def require_manager(client: docker.DockerClient) -> None:
    info = client.info().get("Swarm") or {}
    if info.get("LocalNodeState") != "active" or not info.get("ControlAvailable"):
        raise PortsideError(ErrorCode.SWARM_UNAVAILABLE,
                            "PORTSIDE_ENGINE=swarm but the engine is no Swarm manager; run `docker swarm init` "
                            "there (or point PORTSIDE_DOCKER_HOST at a manager).")


def deploy_stack(settings: Settings, owner: Owner, stack_text: str) -> ComposeResult:
    """`docker stack deploy`: creates the stack, or updates its services (Swarm swaps them start-first)."""
    with engine_or_none(settings, timeout=30) as client:
        if client is None:
            raise PortsideError(ErrorCode.DOCKER_UNAVAILABLE, "No Docker engine answers; see PORTSIDE_DOCKER_HOST.")
        require_manager(client)
    return _cli(settings, ["stack", "deploy", "--prune", "--with-registry-auth", "-c", "-", owner.project],
                stdin=stack_text)


def _services(client: docker.DockerClient, owner: Owner) -> list[Any]:
    return client.services.list(filters={"label": f"{STACK_NAMESPACE}={owner.project}"})


def _service(client: docker.DockerClient, owner: Owner, service: str) -> Any | None:
    try:
        return client.services.get(f"{owner.project}_{service}")
    except NotFound:
        return None


@dataclass(frozen=True)
class Converged:
    """How a deploy ended: ready (container id of a running task), rolled back, or failed (with why)."""

    container_id: str | None
    rolled_back: bool = False
    serving: str | None = None  # after a rollback: the container of a task of the previous version
    failure: str | None = None
    exit_code: int | None = None
    tail: tuple[str, ...] = ()


def _task_image(task: dict[str, Any]) -> str:
    return str(task.get("Spec", {}).get("ContainerSpec", {}).get("Image") or "")


def _logs_tail(client: docker.DockerClient, service_id: str, lines: int = 50) -> tuple[str, ...]:
    """The service's last lines, from every task on every node (the SDK demultiplexes the stream)."""
    try:
        raw = b"".join(client.api.service_logs(service_id, stdout=True, stderr=True, tail=str(lines), follow=False))
    except DockerException as exc:
        log.info("no log tail for service %s: %s", service_id, exc)
        return ()
    return tuple(raw.decode("utf-8", errors="replace").splitlines()[-lines:])


def wait_converged(settings: Settings, owner: Owner, service: str, image: str) -> Converged:
    """Poll the app's service until Swarm finished: every replica runs `image` (a task with a health check is
    `running` only once healthy), the update rolled back, or a fresh service's tasks keep failing. Blocking."""
    # Swarm's verdict on a new task that never gets healthy comes after its boot allowance and the failing checks.
    deadline = (time.monotonic() + settings.ready_timeout_seconds + settings.swarm_health_start_seconds
                + settings.swarm_monitor_seconds)
    client = docker_client(settings)
    try:
        while time.monotonic() < deadline:
            svc = _service(client, owner, service)
            if svc is None:
                return Converged(None, failure="the service disappeared while it was deployed")
            svc.reload()
            update = svc.attrs.get("UpdateStatus") or {}
            state = update.get("State")
            replicas = int(svc.attrs.get("Spec", {}).get("Mode", {}).get("Replicated", {}).get("Replicas") or 1)
            tasks = svc.tasks()
            ours = [t for t in tasks if _task_image(t).split("@")[0] == image]
            running = [t for t in ours if t.get("Status", {}).get("State") == "running"
                       and t.get("DesiredState") == "running"]
            spec_image = str(svc.attrs.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
                             .get("Image") or "").split("@")[0]
            if spec_image != image:
                # Swarm put the previous spec back (a new task failed within `monitor`), or is doing so.
                if state in ("rollback_completed", "rollback_paused"):
                    failed = [t for t in ours if t.get("Status", {}).get("State") in ("failed", "rejected", "shutdown")]
                    status = failed[0].get("Status", {}) if failed else {}
                    why = status.get("Err") or status.get("Message") or update.get("Message")
                    code = (status.get("ContainerStatus") or {}).get("ExitCode")
                    serving = next((str((t["Status"].get("ContainerStatus") or {}).get("ContainerID") or t["ID"])
                                    for t in tasks if t.get("Status", {}).get("State") == "running"
                                    and t.get("DesiredState") == "running"), None)
                    if serving is None and state == "rollback_completed" and time.monotonic() < deadline:
                        # The previous version's task is restarting (a loaded node): wait for it to serve again.
                        time.sleep(0.5)
                        continue
                    return Converged(None, rolled_back=state == "rollback_completed", serving=serving,
                                     failure=f"Swarm rolled the update back ({why})",
                                     exit_code=int(code) if code is not None else None, tail=_logs_tail(client, svc.id))
                time.sleep(0.5)
                continue
            if state == "paused":
                return Converged(None, failure=f"Swarm paused the update: {update.get('Message')}",
                                 tail=_logs_tail(client, svc.id))
            # While `updating`, a new task that runs may still fail within `monitor`: wait for Swarm's verdict.
            if len(running) >= replicas and state not in ("updating", "rollback_started") and _edges_running(
                    client, owner):
                status = running[0].get("Status", {}).get("ContainerStatus", {}) or {}
                return Converged(str(status.get("ContainerID") or running[0].get("ID")))
            if state is None:
                # A fresh service has no update to roll back: Swarm restarts a failed task, and tasks that failed
                # crash_restart_limit times mean the app cannot start (once may be a slow boot on a loaded node).
                failed = [t for t in ours if t.get("Status", {}).get("State") in ("failed", "rejected")]
                if len(failed) >= settings.crash_restart_limit:
                    status = failed[0].get("Status", {})
                    code = (status.get("ContainerStatus") or {}).get("ExitCode")
                    return Converged(None, failure=str(status.get("Err") or status.get("Message") or "task failed"),
                                     exit_code=int(code) if code is not None else None,
                                     tail=_logs_tail(client, svc.id))
            time.sleep(0.5)
        return Converged(None, failure="timeout")
    finally:
        client.close()


def _edges_running(client: docker.DockerClient, owner: Owner) -> bool:
    """Every edge service of the stack (if any) has a running task: the port answers on the managers."""
    for svc in _services(client, owner):
        if LABEL_EDGE in (svc.attrs.get("Spec", {}).get("Labels") or {}) and not any(
                t.get("Status", {}).get("State") == "running" and t.get("DesiredState") == "running"
                for t in svc.tasks()):
            return False
    return True


def app_running(settings: Settings, deployment_id: int, service: str) -> bool:
    with engine_or_none(settings, timeout=30) as client:
        if client is None:
            return False
        svc = _service(client, Owner.of(settings, deployment_id), service)
        return svc is not None and any(t.get("Status", {}).get("State") == "running" for t in svc.tasks())


def teardown(settings: Settings, deployment_id: int, volumes: bool) -> None:
    """`docker stack rm`, then wait until its services, task containers and networks are gone (Swarm removes
    them in the background), and remove anything left with our label."""
    owner = Owner.of(settings, deployment_id)
    with engine_or_none(settings) as client:
        if client is None:
            return
        if _services(client, owner) or client.networks.list(filters=owner.filters):
            _cli(settings, ["stack", "rm", owner.project], timeout=120)
        namespace: dict[str, str | list[str] | bool] = {"label": f"{STACK_NAMESPACE}={owner.project}"}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            left = (_services(client, owner) or list_containers(client, namespace)
                    or client.networks.list(filters=namespace))
            if not left:
                break
            time.sleep(0.5)
        remove_deployment_resources(client, owner, volumes=volumes)


@dataclass(frozen=True)
class ServiceState:
    """What a service's tasks are doing, on whichever node they run: `running`, `restarting`, `crashed` or `gone`;
    for `crashed`, the last exited task's exit code and Swarm's words for it."""

    state: str
    exit_code: int | None = None
    reason: str | None = None


def crash_loop(settings: Settings, tasks: list[dict[str, Any]], image: str) -> ServiceState | None:
    """The single engine's crash rule (services/runner/watcher.py) on tasks: once the app's own process ended
    crash_restart_limit times on the current image (Swarm replaced the task each time), it is `crashed`, even
    while a replacement runs. Swarm keeps the last few tasks per replica (task-history-limit, 5 by default)."""
    exited = sorted((t for t in tasks if _task_image(t).split("@")[0] == image
                     and t.get("Status", {}).get("State") in EXITED),
                    key=lambda t: str(t.get("Status", {}).get("Timestamp") or ""))
    if len(exited) < settings.crash_restart_limit:
        return None
    last = exited[-1].get("Status", {})
    code = (last.get("ContainerStatus") or {}).get("ExitCode")
    why = last.get("Err") or last.get("Message") or last.get("State")
    return ServiceState("crashed", int(code) if code is not None else None,
                        f"its task exited {len(exited)} times and Swarm replaced it each time; the last: {why}")


def service_state(settings: Settings, tasks: list[dict[str, Any]], image: str) -> ServiceState:
    """What one service's tasks are doing. A task Swarm still wants but that is not running (failed, starting,
    pending, or a replacement waiting out the restart delay) is being replaced by Swarm itself (restart_policy
    any): "restarting", until the crash rule says it is a crash loop. Only a service with no such task is gone."""
    states = [t.get("Status", {}) for t in tasks if t.get("DesiredState") in WANTED_TASK_STATES]
    running = any(s.get("State") == "running" for s in states)
    return crash_loop(settings, tasks, image) or ServiceState(
        "running" if running else "restarting" if states else "gone")


def services_by_deployment(settings: Settings) -> dict[int, dict[str, ServiceState]]:
    """deployment id -> {service: what its tasks are doing} for this installation, across nodes."""
    client = docker_client(settings, timeout=30)
    try:
        found: dict[int, dict[str, ServiceState]] = {}
        for svc in client.services.list(filters={"label": f"{LABEL_INSTANCE}={settings.instance}"}):
            labels = svc.attrs.get("Spec", {}).get("Labels") or {}
            deployment = labels.get(LABEL_DEPLOYMENT, "")
            namespace = labels.get(STACK_NAMESPACE, "")
            if not deployment.isdigit() or LABEL_EDGE in labels:
                continue
            name = svc.name.removeprefix(f"{namespace}_")
            tasks = svc.tasks()
            image = str(svc.attrs.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
                        .get("Image") or "").split("@")[0]
            found.setdefault(int(deployment), {})[name] = service_state(settings, tasks, image)
        return found
    finally:
        client.close()

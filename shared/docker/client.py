"""Docker SDK access. The SDK is synchronous: callers run these in a worker thread."""

from __future__ import annotations

import docker
from docker.errors import DockerException

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError

# Every container, network, volume and image Portside creates carries these; clean-up finds them by label.
LABEL_MANAGED = "org.portside.managed"
LABEL_DEPLOYMENT = "org.portside.deployment-id"


def labels_for(deployment_id: int) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_DEPLOYMENT: str(deployment_id)}


def docker_client(settings: Settings, timeout: int = 120) -> docker.DockerClient:
    """A client that has answered a ping, or DOCKER_UNAVAILABLE with what to do about it."""
    try:
        if settings.docker_host:
            client = docker.DockerClient(base_url=settings.docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        where = settings.docker_host or "the default socket (DOCKER_HOST or /var/run/docker.sock)"
        raise PortsideError(
            ErrorCode.DOCKER_UNAVAILABLE,
            f"No Docker engine answers at {where}. Start one (e.g. `dockerd &` or "
            f"`scripts/ensure-docker.sh`) or set PORTSIDE_DOCKER_HOST. ({exc.__class__.__name__})",
        ) from exc
    return client

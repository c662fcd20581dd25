"""Docker SDK access. The SDK is synchronous: callers run these in a worker thread."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import docker
from docker.errors import DockerException
from requests import RequestException

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError

log = logging.getLogger(__name__)

# Every container, network, volume and image Portside creates carries these; clean-up finds them by label.
# What a call to the engine raises: the SDK's own errors, and the ones of requests that it does not wrap (a read
# timeout while a busy engine is slow to answer, a reset connection).
ENGINE_ERRORS = (DockerException, RequestException)

LABEL_MANAGED = "org.portside.managed"
LABEL_INSTANCE = "org.portside.instance"
LABEL_DEPLOYMENT = "org.portside.deployment-id"
# BuildKit's cache mounts take no labels, and Docker 20.10's BuildKit leaves the cache id out of a mount's record
# (its Description is "cached mount <target> from exec <command>"): the builder starts each step it mounts a cache
# for with `PORTSIDE_CACHE_ID=<id> `, so the record names its owner and the janitor can find it.
CACHE_ID_VAR = "PORTSIDE_CACHE_ID"


@dataclass(frozen=True)
class Owner:
    """The installation and deployment a Docker resource belongs to: its labels, filters and project name."""

    instance: str
    deployment_id: int
    # With engine=swarm the deployment's images live in this registry, so every node can pull them.
    registry: str = ""

    @classmethod
    def of(cls, settings: Settings, deployment_id: int) -> Owner:
        registry = settings.registry if settings.engine == "swarm" and settings.registry else ""
        return cls(settings.instance, deployment_id, registry)

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_MANAGED: "true", LABEL_INSTANCE: self.instance, LABEL_DEPLOYMENT: str(self.deployment_id)}

    @property
    def filters(self) -> dict[str, str | list[str] | bool]:
        return {"label": [f"{LABEL_INSTANCE}={self.instance}", f"{LABEL_DEPLOYMENT}={self.deployment_id}"]}

    @property
    def project(self) -> str:
        """Compose project name; also the deployment's network name."""
        return f"{self.instance}-{self.deployment_id}"

    @property
    def image_repo(self) -> str:
        repo = f"portside/{self.instance}-deployment-{self.deployment_id}"
        return f"{self.registry}/{repo}" if self.registry else repo

    def cache_id(self, tool: str) -> str:
        """The id of the deployment's own BuildKit cache mount for `tool`'s downloads (pip, npm, ...)."""
        return f"portside-{self.instance}-{self.deployment_id}-{tool}"


@contextmanager
def engine_or_none(settings: Settings, timeout: int = 120) -> Iterator[docker.DockerClient | None]:
    """A client for best-effort work (clean-up, inspection) that yields None instead of raising when no
    engine answers, and always closes the client."""
    try:
        client = docker_client(settings, timeout)
    except PortsideError as exc:  # the caller skips its best-effort work and says so by getting None
        log.info("no engine for best-effort work: %s", exc.message)
        yield None
        return
    try:
        yield client
    finally:
        client.close()


def docker_client(settings: Settings, timeout: int = 120) -> docker.DockerClient:
    """A client that has answered a ping, or DOCKER_UNAVAILABLE with what to do about it."""
    try:
        if settings.docker_host:
            client = docker.DockerClient(base_url=settings.docker_host, timeout=timeout)
        else:
            client = docker.from_env(timeout=timeout)
        client.ping()
    except ENGINE_ERRORS as exc:
        where = settings.docker_host or "the default socket (DOCKER_HOST or /var/run/docker.sock)"
        raise PortsideError(
            ErrorCode.DOCKER_UNAVAILABLE,
            f"No Docker engine answers at {where}. Start one (e.g. `dockerd &` or "
            f"`scripts/ensure-docker.sh`) or set PORTSIDE_DOCKER_HOST. ({exc.__class__.__name__})",
        ) from exc
    return client

"""Checks before a build starts, so a deployment that cannot succeed fails within seconds with a code,
instead of waiting in `queued` or `building`."""

from __future__ import annotations

import shutil
from pathlib import Path

from docker.errors import DockerException

from shared.config import Settings
from shared.docker import docker_client
from shared.errors import ErrorCode, PortsideError
from shared.net import os_port_free

MB = 1024 * 1024


def docker_data_dir(info: dict) -> Path:
    """Where the engine keeps images and containers; `/` when that path is not on this machine (remote engine)."""
    root = Path(info.get("DockerRootDir") or "/")
    return root if root.exists() else Path("/")


def preflight(settings: Settings, app_dir: Path, requested_port: int | None = None) -> None:
    """Raise the first problem found: DOCKER_UNAVAILABLE, INSUFFICIENT_DISK, REPO_NOT_FOUND or PORT_IN_USE."""
    client = docker_client(settings, timeout=10)
    try:
        try:
            info = client.info()
        except DockerException as exc:
            raise PortsideError(ErrorCode.DOCKER_UNAVAILABLE, f"The Docker engine does not answer: {exc}") from exc
    finally:
        client.close()
    data_dir = docker_data_dir(info)
    free_mb = shutil.disk_usage(data_dir).free // MB
    if free_mb < settings.min_free_disk_mb:
        raise PortsideError(
            ErrorCode.INSUFFICIENT_DISK,
            f"Only {free_mb} MB are free on {data_dir} (Docker's data disk); Portside needs "
            f"{settings.min_free_disk_mb} MB to build. Free space (`docker system prune`) or lower "
            "PORTSIDE_MIN_FREE_DISK_MB.",
        )
    if not app_dir.is_dir():
        raise PortsideError(
            ErrorCode.REPO_NOT_FOUND, f"The app directory {app_dir} no longer exists; register the repository again."
        )
    if requested_port is not None and not os_port_free(settings.bind_address, requested_port):
        raise PortsideError(
            ErrorCode.PORT_IN_USE,
            f"Port {requested_port} is taken by another process on this machine; choose another host port "
            "or leave it empty to get a free one.",
        )

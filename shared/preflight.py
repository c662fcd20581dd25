"""Checks before a build starts, so a deployment that cannot succeed fails within seconds with a code,
instead of waiting in `queued` or `building`."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker
import yaml
from docker.errors import ImageNotFound

from shared.config import Settings
from shared.docker import docker_client
from shared.docker.client import ENGINE_ERRORS
from shared.docker.dockerfile import parse_dockerfile
from shared.errors import ErrorCode, PortsideError
from shared.net import os_port_free

MB = 1024 * 1024
PREFLIGHT_TIMEOUT = 60


def docker_data_dir(info: dict) -> Path:
    """Where the engine keeps images and containers; `/` when that path is not on this machine (remote engine)."""
    root = Path(info.get("DockerRootDir") or "/")
    return root if root.exists() else Path("/")


def needed_images(dockerfile: str) -> list[str]:
    """The images a build of `dockerfile` pulls: every FROM that is not an earlier stage (nor `scratch`) and
    every `COPY --from=` naming an image rather than a stage, in order, without repeats."""
    parsed = parse_dockerfile(dockerfile)
    stages: set[str] = set()
    found: list[str] = []
    for base in parsed.base_images():
        if base.reference.lower() not in stages and base.reference != "scratch" and "$" not in base.reference:
            found.append(base.reference)
        if base.stage:
            stages.add(base.stage)
    for instruction in parsed.of("COPY"):
        source = instruction.flags.get("from")
        if source and source.lower() not in stages and not source.isdigit() and "$" not in source:
            found.append(source)
    return list(dict.fromkeys(found))


def compose_images(compose: str) -> list[str]:
    """The images a compose file runs as they are (services with `image:` and no `build:`): postgres:16, ..."""
    try:
        doc = yaml.safe_load(compose) or {}
    except yaml.YAMLError:
        return []
    services = doc.get("services") if isinstance(doc, dict) else None
    found = []
    for service in (services or {}).values():
        if isinstance(service, dict) and isinstance(service.get("image"), str) and "build" not in service \
                and "$" not in service["image"]:
            found.append(service["image"])
    return list(dict.fromkeys(found))


def unavailable_images(client: docker.DockerClient, images: list[str]) -> list[str]:
    """Those of `images` the engine neither has nor can pull (its registry does not answer for the manifest)."""
    missing = []
    for image in images:
        try:
            client.images.get(image)
            continue
        except ImageNotFound:
            pass
        except ENGINE_ERRORS:
            pass
        try:
            client.api.inspect_distribution(image)
        except ENGINE_ERRORS:  # no registry answers for it (or not within the timeout)
            missing.append(image)
    return missing


def preflight(
    settings: Settings, app_dir: Path, requested_port: int | None = None, dockerfile: str | None = None,
    repo_id: int | None = None, compose: str | None = None,
) -> None:
    """Raise the first problem found: DOCKER_UNAVAILABLE, INSUFFICIENT_DISK, REPO_NOT_FOUND, PORT_IN_USE or
    (when the `dockerfile` about to be built is given) BASE_IMAGE_UNAVAILABLE."""
    # A busy engine (builds on a loaded machine) took over 10 s to answer `info`: that is slow, not absent.
    client = docker_client(settings, timeout=PREFLIGHT_TIMEOUT)
    try:
        try:
            info = client.info()
            wanted = (needed_images(dockerfile) if dockerfile else []) + (compose_images(compose) if compose else [])
            missing = unavailable_images(client, list(dict.fromkeys(wanted)))
        except ENGINE_ERRORS as exc:
            raise PortsideError(
                ErrorCode.DOCKER_UNAVAILABLE,
                f"The Docker engine did not answer within {PREFLIGHT_TIMEOUT} s ({exc.__class__.__name__}); it may "
                "be overloaded: try again when its builds have finished.",
            ) from exc
    finally:
        client.close()
    if missing:
        where = f"/{repo_id}" if repo_id is not None else "/{repo_id}"
        raise PortsideError(
            ErrorCode.BASE_IMAGE_UNAVAILABLE,
            f"The deployment needs images that this Docker engine neither has nor can pull: {', '.join(missing)}. "
            "Load or pull them (`docker pull`, `docker load`, a registry mirror), change the FROM lines, or build "
            f"from Portside's own plan instead: POST /api/deployments/generate{where} with "
            '{"use_repo_dockerfile": false} (CLI: portside deploy --generate-own).',
        )
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

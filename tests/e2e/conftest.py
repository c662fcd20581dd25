"""The whole system against a real Docker engine, driven over HTTP and SSE like a user would."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import docker
import pytest

from tests.support import ROOT, StartupFailed, System, running_system

REQUIRED_IMAGES = ("python:3.12-slim", "node:20-slim")


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(
            f"e2e tests need a Docker engine; run `make test` (it starts one) or scripts/ensure-docker.sh: {exc}"
        )
    missing = [tag for tag in REQUIRED_IMAGES if not client.images.list(name=tag)]
    if missing:
        # `make images` normally did this already; building only what is missing keeps a direct pytest run working.
        subprocess.run(["bash", str(ROOT / "deploy/base-images/build.sh"), *missing], check=True)
    return client


@pytest.fixture(scope="session")
def system(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    try:
        with running_system(tmp_path_factory.mktemp("portside-home"), engine) as running:
            yield running
    except StartupFailed as exc:
        pytest.fail(str(exc))

"""Builds with BuildKit (PORTSIDE_BUILDKIT=on, Debian's 20.10 client) through a whole Portside: a generated app built
with a cache mount for its downloads (added at build time; the saved file stays plain), its plain progress lines
streamed while it builds, and a cancel that ends the running step. The classic path is the walking skeleton's
(the default settings keep a build memory cap, so `auto` builds classic there). Skipped without the 20.10 client."""

from __future__ import annotations

import random
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from shared.docker import LABEL_DEPLOYMENT
from shared.docker.build import buildkit_client_ok
from tests.conftest import copy_fixture
from tests.support import SSECollector, System, running_system

# A Portside of its own plus a whole deploy: about two minutes on 2 busy cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def buildkit(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if not buildkit_client_ok(None):  # asked here, not at collection: the probe is a (tiny) build
        pytest.skip("no Debian 20.10 Docker client with BuildKit at /usr/bin/docker")
    env = {"PORTSIDE_BUILDKIT": "on", "PORTSIDE_BUILD_MEMORY": "none"}
    with running_system(tmp_path_factory.mktemp("buildkit-home"), engine, env) as system:
        yield system


def test_generated_app_builds_with_buildkit_and_a_cache_mount_and_answers(
    buildkit: System, engine: docker.DockerClient, tmp_path: Path,
) -> None:
    source = copy_fixture("python-flask", tmp_path)
    generated = buildkit.deploy_path(source)
    deployment_id = generated["deployment_id"]
    assert "--mount" not in generated["dockerfile"]  # the saved file builds with the classic builder too
    sse = SSECollector(f"{buildkit.url}/api/deployments/{deployment_id}/logs/stream", headers=buildkit.auth_headers)
    try:
        result = buildkit.deploy(deployment_id)
        assert result["status"] == "running", (result["error_code"], result["error_message"])
        answer = httpx.get(f"http://127.0.0.1:{result['port']}/", timeout=10)
        assert answer.status_code == 200 and "hello from flask" in answer.text
        # BuildKit's plain progress, line by line on the logs stream, the install step under its cache mount.
        assert sse.wait_for("building with BuildKit (PORTSIDE_BUILDKIT=on)"), sse.events[-5:]
        assert sse.wait_for(f"--mount=type=cache,id=portside-{buildkit.instance}-{deployment_id}-pip"), sse.events[-20:]
        assert sse.wait_for("naming to docker.io/"), sse.events[-5:]
    finally:
        sse.close()
    built = buildkit.call("GET", f"/api/deployments/{deployment_id}")["data"]
    image = engine.images.get(built["image_tag"])
    assert image.labels.get(LABEL_DEPLOYMENT) == str(deployment_id), image.labels
    stopped = buildkit.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)
    assert stopped["data"]["status"] == "stopped"
    assert buildkit.containers(engine, deployment_id) == []


def _step_running(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True, check=False).returncode == 0


def test_cancel_ends_a_buildkit_step_within_seconds(buildkit: System, tmp_path: Path) -> None:
    marker = f"sleep 600.{random.randrange(10**8):08d}"  # this test's own step, found among the host's processes
    repo = tmp_path / "endless"
    repo.mkdir()
    (repo / "Dockerfile").write_text(f'FROM python:3.12-slim\nRUN echo building-forever && {marker}\nCMD ["true"]\n')
    deployment_id = int(buildkit.deploy_path(repo)["deployment_id"])
    buildkit.call("POST", f"/api/deployments/{deployment_id}/deploy")
    deadline = time.monotonic() + 120
    while not _step_running(marker):
        assert time.monotonic() < deadline, "the build never reached its long step"
        time.sleep(0.3)
    logs = buildkit.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 200})["data"]["logs"]
    assert re.search(r"^#\d+ \[2/2\] RUN echo building-forever", logs, re.MULTILINE), logs[-2000:]

    started = time.monotonic()
    cancelled = buildkit.call("POST", f"/api/deployments/{deployment_id}/cancel", expect=200)["data"]
    assert cancelled["status"] == "build_failed" and cancelled["error_code"] == "BUILD_CANCELLED"
    while _step_running(marker) and time.monotonic() - started < 30:
        time.sleep(0.2)
    gone_after = time.monotonic() - started
    assert not _step_running(marker), "the BuildKit step outlived cancel"
    assert gone_after < 10, f"the BuildKit step went {gone_after:.1f} s after cancel"
    assert buildkit.wait_status(deployment_id, {"build_failed"}, timeout=5)["error_code"] == "BUILD_CANCELLED"

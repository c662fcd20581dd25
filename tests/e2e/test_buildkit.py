"""Builds with BuildKit (PORTSIDE_BUILDKIT=on, Debian's 20.10 client) through a whole Portside: a generated app built
with a cache mount for its downloads (added at build time; the saved file stays plain), its plain progress lines
streamed while it builds, a cancel that ends the running step, and the janitor removing a deleted deployment's cache
mount while another installation's stays. The classic path is the walking skeleton's
(the default settings keep a build memory cap, so `auto` builds classic there). Skipped without the 20.10 client."""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from shared.docker import LABEL_DEPLOYMENT
from shared.docker.build import BUILDKIT_CLIENT, buildkit_client_ok
from shared.docker.containers import build_cache_records
from tests.conftest import copy_fixture
from tests.support import SSECollector, System, running_system

# A Portside of its own plus a whole deploy: about two minutes on 2 busy cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def buildkit(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if not buildkit_client_ok(None):  # asked here, not at collection: the probe is a (tiny) build
        pytest.skip("no Debian 20.10 Docker client with BuildKit at /usr/bin/docker")
    # A janitor pass every 10 s, so a deleted deployment's cache mount goes within the test.
    env = {"PORTSIDE_BUILDKIT": "on", "PORTSIDE_BUILD_MEMORY": "none", "PORTSIDE_JANITOR_INTERVAL_SECONDS": "10"}
    with running_system(tmp_path_factory.mktemp("buildkit-home"), engine, env) as system:
        yield system
    # Its deployments' cache mounts and install steps' layers (the janitor keeps a live deployment's), once the
    # images that share those layers are gone with the system.
    _prune_records(engine, f"PORTSIDE_CACHE_ID=portside-{system.instance}-")


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


def _cache_mounts(engine: docker.DockerClient, text: str) -> list[dict]:
    return [r for r in build_cache_records(engine) if r["Type"] == "exec.cachemount" and text in r["Description"]]


@pytest.fixture
def foreign_cache_mounts(engine: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    """Two cache mounts that are not this installation's: another installation's (as its builder marks them) and a
    hand-made one; both carry a marker of their own, and both are removed afterwards."""
    marker = uuid.uuid4().hex[:12]
    other = f"portside-other{marker}-1-npm"
    context = tmp_path / "foreign"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM debian:bookworm-slim\n"
        f"RUN --mount=type=cache,id={other},target=/root/.npm PORTSIDE_CACHE_ID={other} "
        f"sh -c 'echo {marker} >/root/.npm/x'\n"
        f"RUN --mount=type=cache,id=by-hand-{marker},target=/cache echo {marker} >/cache/x\n")
    built = subprocess.run([BUILDKIT_CLIENT, "build", "--progress=plain", "--output", "type=tar,dest=/dev/null",
                            str(context)], env={**os.environ, "DOCKER_BUILDKIT": "1"}, capture_output=True,
                           text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    try:
        yield marker
    finally:
        _prune_records(engine, marker)


def _prune_records(engine: docker.DockerClient, text: str) -> None:
    """Every build cache record whose description holds `text`, and the layers built on those (theirs alone: `text`
    is unique to the test); a layer goes only after the layers built on it."""
    for _ in range(10):
        records = build_cache_records(engine)
        ours = {r["ID"] for r in records if text in r["Description"]}
        while grown := {r["ID"] for r in records if r["Parent"] in ours} - ours:
            ours |= grown
        deleted = [engine.api.prune_builds(filters={"id": f"^{i}$"})["CachesDeleted"] for i in sorted(ours)]
        if not any(deleted):
            return


def test_janitor_removes_a_deleted_deployments_cache_mount_and_not_another_installations(
    buildkit: System, engine: docker.DockerClient, tmp_path: Path, foreign_cache_mounts: str,
) -> None:
    # npm's cache, which has bytes in it (pip left its cache mount empty in every build on this machine).
    deployment_id = int(buildkit.deploy_path(copy_fixture("node-express", tmp_path))["deployment_id"])
    cache = f"PORTSIDE_CACHE_ID=portside-{buildkit.instance}-{deployment_id}-npm "
    try:
        result = buildkit.deploy(deployment_id)
        assert result["status"] == "running", (result["error_code"], result["error_message"])
        assert len(_cache_mounts(engine, cache)) == 1  # BuildKit's record names the deployment's cache
        assert len(_cache_mounts(engine, foreign_cache_mounts)) == 2
        buildkit.call("DELETE", f"/api/deployments/{deployment_id}", timeout=180)

        deadline = time.monotonic() + 120  # a pass every 10 s
        while _cache_mounts(engine, cache):
            assert time.monotonic() < deadline, "the janitor left the deleted deployment's cache mount"
            time.sleep(2)
        assert len(_cache_mounts(engine, foreign_cache_mounts)) == 2  # not this installation's: untouched
        said = re.search(rf"janitor removed .* BuildKit cache mounts [^(]*portside-{buildkit.instance}-"
                         rf"{deployment_id}-npm[^(]*\(([0-9.]+) MB\)", buildkit.log.read_text())
        assert said and float(said[1]) > 0, buildkit.log.read_text()[-3000:]
    finally:
        _prune_records(engine, cache)  # the install step's layers (BuildKit's layer cache is not the janitor's)

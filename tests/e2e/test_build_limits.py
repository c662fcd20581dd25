"""Builds that can't sink the host, against the real engine: a memory cap the kernel enforces (BUILD_RESOURCE_LIMIT),
a limit of one build at a time across the installation, cancel that kills the build's container, and the disk
janitor keeping N images and touching nothing it did not label. One Portside with PORTSIDE_BUILD_MEMORY=256m and
PORTSIDE_MAX_CONCURRENT_BUILDS=1 serves the system tests of this file."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import httpx
import pytest

from shared.docker import Owner
from shared.docker.build import BuildLimits, build_context, build_image
from shared.docker.containers import list_containers, sweep_images
from tests.support import ROOT, System, running_system

RUN_ID = uuid.uuid4().hex[:8]
TEST_LABEL = "org.portside.e2e-build-limits"
# Allocates and touches 600 MB: more than the 256 MB cap, far less than the machine has.
HUNGRY = 'RUN python3 -c "b = bytearray(600 * 1024 * 1024); print(len(b))"'
SERVE = 'EXPOSE 8000\nUSER 1000\nCMD ["python3", "-m", "http.server", "8000"]\n'


def test_build_step_over_its_memory_cap_is_killed_by_the_kernel(engine: docker.DockerClient) -> None:
    tag = f"portside-e2e/build-limits:{RUN_ID}"
    dockerfile = (
        "FROM python:3.12-slim\n"
        f"RUN echo {RUN_ID} && cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us\n"
        f"{HUNGRY}\n"
    )
    lines: list[str] = []
    outcome = build_image(
        engine, context=build_context(str(ROOT / "tests" / "e2e"), "Dockerfile.limits", dockerfile, ["**"]),
        dockerfile="Dockerfile.limits", tag=tag, labels={TEST_LABEL: RUN_ID},
        on_line=lambda line: lines.append(line.text), limits=BuildLimits(memory=256 * 1024**2, cpus=0.5),
    )
    # The layer of step 2 (ours alone: it echoes this run's id) stays as build cache; remove it.
    after_first = lines[next(i for i, t in enumerate(lines) if t.startswith("Step 2/")):]
    for layer in re.findall(r"^ ---> ([0-9a-f]{12})$", "\n".join(after_first), re.MULTILINE):
        engine.images.remove(layer)
    assert not outcome.succeeded
    assert outcome.exit_code == 137 and outcome.oom_killed, (outcome, lines[-10:])
    # The caps the step's container really had (cgroup v1 files, read inside the build).
    assert str(256 * 1024**2) in lines and "50000" in lines, lines
    assert not engine.images.list(name=tag)


@pytest.fixture(scope="module")
def limited(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    env = {"PORTSIDE_BUILD_MEMORY": "256m", "PORTSIDE_MAX_CONCURRENT_BUILDS": "1"}
    with running_system(tmp_path_factory.mktemp("limited-home"), engine, env) as system:
        yield system


def _repo(tmp_path: Path, name: str, steps: str) -> Path:
    repo = tmp_path / name
    repo.mkdir()
    (repo / "Dockerfile").write_text(f"FROM python:3.12-slim\n{steps}\n{SERVE}")
    return repo


def _deployment(system: System, repo: Path) -> int:
    return int(system.deploy_path(repo)["deployment_id"])


def _messages(system: System, deployment_id: int) -> list[str]:
    return [e["message"] or "" for e in system.events(deployment_id)]


def test_build_over_the_memory_cap_fails_with_build_resource_limit_and_the_api_stays_responsive(
    limited: System, engine: docker.DockerClient, tmp_path: Path,
) -> None:
    deployment_id = _deployment(limited, _repo(tmp_path, "hungry", HUNGRY))
    slowest: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=limited.url, timeout=10) as client:
            while not done.is_set():
                started = time.monotonic()
                assert client.get("/api/health").status_code == 200
                slowest.append(time.monotonic() - started)
                time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        result = limited.deploy(deployment_id)
    finally:
        done.set()
        prober.join(15)
    assert result["status"] == "build_failed", result
    assert result["error_code"] == "BUILD_RESOURCE_LIMIT"
    assert "256 MB" in result["error_message"] and "PORTSIDE_BUILD_MEMORY" in result["error_message"]
    assert slowest and max(slowest) < 5, f"the API answered /health in up to {max(slowest):.1f} s during the build"
    assert limited.containers(engine, deployment_id) == []


def test_cancel_kills_the_running_build_within_seconds(limited: System, engine: docker.DockerClient,
                                                       tmp_path: Path) -> None:
    deployment_id = _deployment(limited, _repo(tmp_path, "endless", "RUN echo building-forever && sleep 600"))
    limited.call("POST", f"/api/deployments/{deployment_id}/deploy")
    step_container = None
    deadline = time.monotonic() + 120
    while step_container is None and time.monotonic() < deadline:
        lines = limited.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 200})["data"]
        text = lines["logs"].splitlines()
        if "building-forever" in text:  # the step's own output: its container runs now
            running = [m[1] for t in text if (m := re.search(r"Running in ([0-9a-f]{12})", t))]
            step_container = running[-1]
        time.sleep(0.3)
    assert step_container, "the build never reached its long step"
    assert engine.containers.list(filters={"id": step_container}), text

    started = time.monotonic()
    cancelled = limited.call("POST", f"/api/deployments/{deployment_id}/cancel", expect=200)["data"]
    assert cancelled["status"] == "build_failed" and cancelled["error_code"] == "BUILD_CANCELLED"
    while list_containers(engine, {"id": step_container}) and time.monotonic() - started < 30:
        time.sleep(0.2)
    gone_after = time.monotonic() - started
    assert not list_containers(engine, {"id": step_container}), "the build container outlived cancel"
    assert gone_after < 10, f"the build container went {gone_after:.1f} s after cancel"
    # Not stuck: the status stays, a second cancel is refused with a sentence, and a new deploy is accepted.
    assert limited.wait_status(deployment_id, {"build_failed"}, timeout=5)["error_code"] == "BUILD_CANCELLED"
    again = limited.call("POST", f"/api/deployments/{deployment_id}/cancel", expect=409)
    assert again["error_code"] == "INVALID_STATE" and "only a queued or building" in again["detail"]
    cli = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "cancel", str(deployment_id), "--api", limited.url],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env={**os.environ, "PORTSIDE_TOKEN": limited.token},
    )
    assert cli.returncode != 0 and "INVALID_STATE" in cli.stdout + cli.stderr, (cli.stdout, cli.stderr)
    assert limited.call("POST", f"/api/deployments/{deployment_id}/stop")["data"]["status"] == "build_failed"


@pytest.mark.slow  # two whole deploys, one after the other
def test_concurrency_limit_of_one_makes_the_second_build_wait_then_both_run(limited: System,
                                                                          tmp_path: Path) -> None:
    first = _deployment(limited, _repo(tmp_path, "first", "RUN echo first-build && sleep 6"))
    second = _deployment(limited, _repo(tmp_path, "second", "RUN echo second-build"))
    limited.call("POST", f"/api/deployments/{first}/deploy")
    # `building` comes before the slot is taken: wait for the first line the build writes holding it.
    deadline = time.monotonic() + 120
    while "building with " not in limited.call("GET", f"/api/deployments/{first}/logs",
                                                  params={"lines": 1000})["data"]["logs"]:
        assert time.monotonic() < deadline, _messages(limited, first)
        time.sleep(0.2)
    limited.call("POST", f"/api/deployments/{second}/deploy")
    deadline = time.monotonic() + 30
    while not any("waiting for a build slot" in m for m in _messages(limited, second)):
        assert time.monotonic() < deadline, _messages(limited, second)
        time.sleep(0.2)
    waiting = limited.call("GET", f"/api/deployments/{second}")["data"]
    assert waiting["status"] == "building"
    assert "1 of 1 in use (PORTSIDE_MAX_CONCURRENT_BUILDS)" in " ".join(_messages(limited, second))

    ends = {d: limited.wait_status(d, {"running", "build_failed", "error", "crashed"}, timeout=180) for d in
            (first, second)}
    assert all(e["status"] == "running" for e in ends.values()), {
        d: (e["status"], e["error_code"], e["error_message"]) for d, e in ends.items()}
    messages = _messages(limited, second)
    assert any(re.search(r"build slot 0 free after [0-9.]+ s", m) for m in messages), messages
    first_built = next(e["created_at"] for e in limited.events(first) if "built in" in (e["message"] or ""))
    second_started = next(e["created_at"] for e in limited.events(second) if "free after" in (e["message"] or ""))
    assert second_started >= first_built  # the second build began after the first one ended
    for d in (first, second):
        limited.call("POST", f"/api/deployments/{d}/stop", params={"wait": "true"})


@pytest.fixture
def images(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Ids of every image the janitor test builds; all removed at the end, whatever the janitor did."""
    made: list[str] = []
    yield made
    for image_id in reversed(made):
        try:
            engine.images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass


def _image(engine: docker.DockerClient, made: list[str], tag: str, labels: dict[str, str]) -> str:
    dockerfile = f"FROM debian:bookworm-slim\nLABEL {TEST_LABEL}={RUN_ID} nonce={uuid.uuid4().hex}\n"
    image, _ = engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels=labels, rm=True)
    made.append(str(image.id))
    return str(image.id)


def test_janitor_keeps_the_newest_n_and_touches_nothing_unlabelled(engine: docker.DockerClient,
                                                                   images: list[str]) -> None:
    instance = f"jan-{RUN_ID}"
    owner, deleted = Owner(instance, 1), Owner(instance, 2)
    # A rebuilt tag leaves its old image untagged (still labelled): build cache the janitor ages out.
    stale = _image(engine, images, f"{owner.image_repo}:rebuilt", owner.labels)
    _image(engine, images, f"{owner.image_repo}:rebuilt", owner.labels)
    tags = [f"{owner.image_repo}:{n}" for n in range(1, 5)]
    for tag in tags:  # one after another: Created (in nanoseconds) orders them
        _image(engine, images, tag, owner.labels)
    gone_deployment = _image(engine, images, f"{deleted.image_repo}:1", deleted.labels)
    # Not the janitor's: same repository name without the labels, another installation's image.
    unlabelled = _image(engine, images, f"{owner.image_repo}:by-hand", {})
    other = Owner(f"other-{RUN_ID}", 1)
    foreign = _image(engine, images, f"{other.image_repo}:1", other.labels)

    # Deployment 1 runs tags[0] (kept although old); deployment 2 no longer exists.
    report = sweep_images(engine, instance, {1: {tags[0]}}, 2, datetime.now(UTC) + timedelta(seconds=5))

    left = {t for i in engine.images.list(name=owner.image_repo) for t in i.tags}
    assert left == {tags[0], tags[2], tags[3], f"{owner.image_repo}:by-hand"}, left
    assert sorted(report.removed_tags) == sorted([tags[1], f"{owner.image_repo}:rebuilt", f"{deleted.image_repo}:1"])
    assert len(report.removed_untagged) == 1
    ids = {i.id for i in engine.images.list(all=True)}
    assert stale not in ids and gone_deployment not in ids
    assert unlabelled in ids and foreign in ids
    # A young untagged image stays until it is old enough.
    young = _image(engine, images, f"{owner.image_repo}:young", owner.labels)
    _image(engine, images, f"{owner.image_repo}:young", owner.labels)
    sweep_images(engine, instance, {1: {tags[0]}}, 10, datetime.now(UTC) - timedelta(hours=1))
    assert young in {i.id for i in engine.images.list(all=True)}

"""Portside in containers: deploy/compose.yaml from Portside's own image (`make images`), on a fresh project
(its own volumes, home directory, API port and instance name), driven over HTTP like a user. A fixture app is
cloned from a git daemon on the host, built, run and answers 200; then the builder is scaled to 3 replicas and
several deploys run at once; then everything is taken down and nothing of the project is left on the engine."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import httpx
import pytest

from tests.compose_support import Stack, compose_stack, git_daemon, leftovers
from tests.support import System

pytestmark = pytest.mark.slow

SCALED_DEPLOYS = 6
FINAL = {"running", "crashed", "error", "build_failed"}


@pytest.fixture(scope="module")
def stack(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with compose_stack(engine, tmp_path_factory.mktemp("stack")) as running:
        project = running.project
        yield running
    assert leftovers(engine, project) == []


@pytest.fixture(scope="module")
def git_url(stack: Stack, engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with git_daemon(stack, engine, tmp_path_factory.mktemp("git"), "python-flask") as url:
        yield url


def _generate(system: System, repo_id: int) -> int:
    return system.call("POST", f"/api/deployments/generate/{repo_id}", json={}, timeout=120)["data"]["deployment_id"]


def _builders(system: System, deployment_id: int) -> set[str]:
    """The builder replicas (host names) that worked on a deployment, from its timeline."""
    return {e["message"].rsplit(" on ", 1)[1].rstrip(")") for e in system.events(deployment_id)
            if "builder pid" in (e["message"] or "")}


def test_compose_stack_deploys_an_app_then_scaled_builders_share_the_work(
    stack: Stack, git_url: str, engine: docker.DockerClient
) -> None:
    system = stack.system
    repo_id = system.call("POST", "/api/repositories", json={"url": git_url}, timeout=120)["data"]["id"]
    first = _generate(system, repo_id)
    outcome = system.deploy(first)
    assert outcome["status"] == "running", system.call("GET", f"/api/deployments/{first}")
    # Published on the host, reached from the host; the runner saw it answer from its container.
    assert httpx.get(f"http://127.0.0.1:{outcome['port']}/", timeout=10).status_code == 200
    logs = system.call("GET", f"/api/deployments/{first}/logs", params={"lines": 500})["data"]["logs"]
    assert "running at" in logs  # logstream (another container) relays the workers' lines through the API

    stack.scale(engine, "builder", 3)
    ids = [_generate(system, repo_id) for _ in range(SCALED_DEPLOYS)]
    started = time.monotonic()
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    states = [system.wait_status(d, FINAL, timeout=900) for d in ids]
    elapsed = time.monotonic() - started
    assert [s["status"] for s in states] == ["running"] * SCALED_DEPLOYS, [
        (s["id"], s["status"], s["error_message"]) for s in states if s["status"] != "running"]
    for state in states:
        assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
    replicas = set().union(*(_builders(system, d) for d in ids))
    print(f"{SCALED_DEPLOYS} deploys with 3 builders in {elapsed:.1f} s "
          f"({SCALED_DEPLOYS / elapsed * 60:.1f} per minute), built by {len(replicas)} replicas")
    assert len(replicas) >= 2, replicas  # the jobs were shared, not all taken by one replica

    for deployment_id in [first, *ids]:
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
        assert system.containers(engine, deployment_id) == []

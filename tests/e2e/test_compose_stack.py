"""Portside in containers: deploy/compose.yaml from Portside's own image (`make images`), on a fresh project
(its own volumes, home directory, API port and instance name), driven over HTTP like a user. A fixture app is
cloned from a git daemon on the host, built, run and answers 200; then the builder is scaled to 3 replicas and
several deploys run at once; then everything is taken down and nothing of the project is left on the engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import docker
import httpx
import pytest

from shared.docker.compose import compose_command
from shared.net import free_tcp_port
from tests.conftest import copy_fixture
from tests.support import ROOT, System, remove_instance_resources

pytestmark = pytest.mark.slow

IMAGE = os.environ.get("PORTSIDE_IMAGE", "portside:local")
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
SCALED_DEPLOYS = 6
FINAL = {"running", "crashed", "error", "build_failed"}


@dataclass
class Stack:
    project: str
    env_file: Path
    home: Path

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*compose_command(), "-p", self.project, "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        assert not check or result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def containers(self, engine: docker.DockerClient, service: str | None = None) -> list:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return engine.containers.list(all=True, filters={"label": labels})

    def wait_healthy(self, engine: docker.DockerClient, service: str, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = [c.attrs["State"].get("Health", {}).get("Status") for c in self.containers(engine, service)]
            if states.count("healthy") == count and len(states) == count:
                return
            assert time.monotonic() < deadline, f"{service}: {states}\n{self.compose('logs', '--tail', '40', service, check=False).stdout}"
            time.sleep(2)


@pytest.fixture(scope="module")
def stack(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, System]]:
    if not engine.images.list(name=IMAGE):
        subprocess.run(["bash", str(ROOT / "deploy/portside/build-image.sh"), IMAGE], check=True)
    work = tmp_path_factory.mktemp("stack")
    project = f"pst-{uuid4().hex[:8]}"
    api_port = free_tcp_port()
    env_file = work / "stack.env"
    env_file.write_text("\n".join([
        f"PORTSIDE_IMAGE={IMAGE}",
        f"PORTSIDE_HOME={work / 'home'}",
        f"PORTSIDE_API_PUBLISH=127.0.0.1:{api_port}",
        f"PORTSIDE_INSTANCE={project}",
        f"PORTSIDE_ENV_FILE={env_file}",
        # The fixture is cloned from a git daemon on this host (a private address).
        "PORTSIDE_ALLOW_PRIVATE_NETWORKS=true",
        "PORTSIDE_READY_TIMEOUT_SECONDS=120",
    ]) + "\n")
    running = Stack(project, env_file, work / "home")
    url = f"http://127.0.0.1:{api_port}"
    try:
        running.compose("up", "-d")
        for service in ("nats", "postgres", "api", "logstream", "detector", "builder", "runner"):
            running.wait_healthy(engine, service, 1)
        system = System(url, running.home, project, None, work / "stack.log")  # type: ignore[arg-type]
        assert system.call("GET", "/api/health")["data"]["status"] == "ok"
        yield running, system
    finally:
        try:
            deployments = httpx.get(f"{url}/api/deployments", timeout=10).json().get("data", [])
            for row in deployments:
                httpx.post(f"{url}/api/deployments/{row['id']}/stop", params={"wait": "true"}, timeout=180)
        except (httpx.HTTPError, ValueError):
            pass
        running.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
        remove_instance_resources(engine, project)
        shutil.rmtree(work, ignore_errors=True)
    # No leftovers: no container, network or volume of the project, nothing of its deployments.
    assert running.containers(engine) == []
    assert engine.networks.list(filters={"label": f"com.docker.compose.project={project}"}) == []
    assert engine.volumes.list(filters={"label": f"com.docker.compose.project={project}"}) == []
    assert engine.containers.list(all=True, filters={"label": f"org.portside.instance={project}"}) == []


@pytest.fixture(scope="module")
def git_url(stack: tuple[Stack, System], engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The python-flask fixture as a git repository served by `git daemon` on the address containers reach
    the host at (host.docker.internal), so the containerised API clones it like any git URL."""
    running, _ = stack
    (api,) = running.containers(engine, "api")
    gateway = api.exec_run(["getent", "hosts", "host.docker.internal"]).output.decode().split()[0]
    base = tmp_path_factory.mktemp("git")
    copy_fixture("python-flask", base, git=True)
    port = free_tcp_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", f"--listen={gateway}", f"--port={port}", "--reuseaddr", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield f"git://host.docker.internal:{port}/python-flask"
    daemon.terminate()
    daemon.wait(10)


def _register(system: System, url: str) -> int:
    return system.call("POST", "/api/repositories", json={"url": url}, timeout=120)["data"]["id"]


def _generate(system: System, repo_id: int) -> int:
    return system.call("POST", f"/api/deployments/generate/{repo_id}", json={}, timeout=120)["data"]["deployment_id"]


def _builders(system: System, deployment_id: int) -> set[str]:
    """The builder replicas (host names) that worked on a deployment, from its timeline."""
    return {e["message"].rsplit(" on ", 1)[1].rstrip(")") for e in system.events(deployment_id)
            if "builder pid" in (e["message"] or "")}


def test_compose_stack_deploys_an_app_then_scaled_builders_share_the_work(
    stack: tuple[Stack, System], git_url: str, engine: docker.DockerClient
) -> None:
    running, system = stack
    repo_id = _register(system, git_url)
    first = _generate(system, repo_id)
    outcome = system.deploy(first)
    assert outcome["status"] == "running", system.call("GET", f"/api/deployments/{first}")
    # Published on the host, reached from the host; the runner saw it answer from its container.
    assert httpx.get(f"http://127.0.0.1:{outcome['port']}/", timeout=10).status_code == 200
    logs = system.call("GET", f"/api/deployments/{first}/logs", params={"lines": 500})["data"]["logs"]
    assert "running at" in logs  # logstream (another container) relays the workers' lines through the API

    running.compose("up", "-d", "--no-recreate", "--scale", "builder=3")
    running.wait_healthy(engine, "builder", 3)

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

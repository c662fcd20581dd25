"""Bring up deploy/compose.yaml as a fresh project (its own volumes, home directory, API port and instance name)
and serve fixture repositories to it over git: used by the e2e test of the containerised stack and by
`make bench`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import docker
import httpx

from shared.docker.compose import compose_command
from shared.docker.containers import list_containers
from shared.net import free_tcp_port
from tests.conftest import copy_fixture
from tests.support import ROOT, System, remove_instance_resources

IMAGE = os.environ.get("PORTSIDE_IMAGE", "portside:local")
COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
# Healthy replicas of each long-running service after `up` (compose.yaml's defaults).
SERVICES = {"nats": 1, "postgres": 1, "api": 2, "logstream": 2, "detector": 1, "builder": 1, "runner": 1, "proxy": 1}


@dataclass
class Stack:
    project: str
    env_file: Path
    home: Path
    system: System
    # Compose files a test adds on top of deploy/compose.yaml (e.g. workers on "another machine").
    extra_files: list[Path] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [arg for path in (COMPOSE_FILE, *self.extra_files) for arg in ("-f", str(path))]
        cmd = [*compose_command(), "-p", self.project, "--env-file", str(self.env_file), *files, *args]
        # The stack's settings come from its env file only: Compose lets the caller's environment win over
        # --env-file, and CI exports PORTSIDE_HOME (the stack would then share the test runner's home).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTSIDE_", "COMPOSE_"))}
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        assert not check or result.returncode == 0, (
            f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def containers(self, engine: docker.DockerClient, service: str | None = None) -> list:
        labels = [f"com.docker.compose.project={self.project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        return list_containers(engine, {"label": labels})

    def wait_healthy(self, engine: docker.DockerClient, service: str, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            states = [c.attrs["State"].get("Health", {}).get("Status") for c in self.containers(engine, service)]
            if states.count("healthy") == count and len(states) == count:
                return
            if time.monotonic() > deadline:
                logs = self.compose("logs", "--tail", "40", service, check=False).stdout
                raise AssertionError(f"{service}: {states}\n{logs}")
            time.sleep(2)

    def replica_urls(self, engine: docker.DockerClient, service: str, port: int) -> list[str]:
        """Each replica's own address on the project's network (the host reaches it directly), to talk to one
        replica past the proxy."""
        urls = []
        for container in sorted(self.containers(engine, service), key=lambda c: c.name):
            (network,) = container.attrs["NetworkSettings"]["Networks"].values()
            urls.append(f"http://{network['IPAddress']}:{port}")
        return urls

    def scale(self, engine: docker.DockerClient, service: str, count: int) -> None:
        self.compose("up", "-d", "--no-recreate", "--scale", f"{service}={count}")
        if count:
            self.wait_healthy(engine, service, count)


def leftovers(engine: docker.DockerClient, project: str) -> list[str]:
    """Anything of the project (containers, networks, volumes) or of its deployments still on the engine."""
    label = {"label": f"com.docker.compose.project={project}"}
    found = [f"container {c.name}" for c in list_containers(engine, label)]
    found += [f"network {n.name}" for n in engine.networks.list(filters=label)]
    found += [f"volume {v.name}" for v in engine.volumes.list(filters=label)]
    apps = {"label": f"org.portside.instance={project}"}
    found += [f"app container {c.name}" for c in list_containers(engine, apps)]
    return found


@contextmanager
def compose_stack(engine: docker.DockerClient, work: Path, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`docker compose up -d` of deploy/compose.yaml with every service healthy; on exit, every deployment is
    stopped and `down -v` removes the project (then anything its instance left, by label)."""
    # Always from this tree (the layer cache makes it quick): an image left by an earlier checkout would test old code.
    subprocess.run(["bash", str(ROOT / "deploy/portside/build-image.sh"), IMAGE], check=True)
    project = f"pst-{uuid4().hex[:8]}"
    api_port = free_tcp_port()
    env_file = work / "stack.env"
    settings = {
        "PORTSIDE_IMAGE": IMAGE,
        "PORTSIDE_HOME": str(work / "home"),
        "PORTSIDE_API_PUBLISH": f"127.0.0.1:{api_port}",
        "PORTSIDE_INSTANCE": project,
        "PORTSIDE_ENV_FILE": str(env_file),
        # Fixtures are cloned from a git daemon on this host (a private address).
        "PORTSIDE_ALLOW_PRIVATE_NETWORKS": "true",
        "PORTSIDE_READY_TIMEOUT_SECONDS": "120",
        # Every test request comes from one address.
        "PORTSIDE_DEPLOYS_PER_MINUTE": "100000",
        "PORTSIDE_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
        **(extra_env or {}),
    }
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    url = f"http://127.0.0.1:{api_port}"
    stack = Stack(project, env_file, work / "home", System(url, work / "home", project, None, work / "stack.log"))  # type: ignore[arg-type]
    try:
        started = stack.compose("up", "-d", check=False)
        if started.returncode != 0:
            logs = stack.compose("logs", "--tail", "30", check=False)
            raise AssertionError(f"up -d failed:\n{started.stderr[-3000:]}\n{logs.stdout[-12000:]}")
        for service, count in SERVICES.items():
            stack.wait_healthy(engine, service, count)
        stack.system.sign_up()
        yield stack
    finally:
        try:
            client = stack.system.client
            for row in client.get("/api/deployments", timeout=10).json().get("data", []):
                client.post(f"/api/deployments/{row['id']}/stop", params={"wait": "true"}, timeout=180)
        except (httpx.HTTPError, ValueError):
            pass
        stack.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
        remove_instance_resources(engine, project)
        shutil.rmtree(work / "home", ignore_errors=True)


@contextmanager
def git_daemon(stack: Stack, engine: docker.DockerClient, base: Path, fixture: str) -> Iterator[str]:
    """A fixture as a git repository served by `git daemon` on the address containers reach the host at
    (host.docker.internal), so the containerised API clones it like any git URL."""
    api = stack.containers(engine, "api")[0]  # any replica: they share the network
    gateway = api.exec_run(["getent", "hosts", "host.docker.internal"]).output.decode().split()[0]
    copy_fixture(fixture, base, git=True)
    port = free_tcp_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", f"--listen={gateway}", f"--port={port}",
         "--reuseaddr", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield f"git://host.docker.internal:{port}/{fixture}"
    finally:
        daemon.terminate()
        daemon.wait(10)

"""What the Swarm tests and the Swarm bench need beside a running Portside: Debian's docker-registry on a loopback
port, Swarm mode on the test engine (only for as long as they run, and only if it was off), the removal of
whatever stacks an instance left, and a two-node swarm of Docker-in-Docker engines (deploy/dind/)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import docker
import httpx

from services.runner.swarm import edge_image_tag
from shared.config import Settings
from shared.docker import LABEL_INSTANCE
from shared.docker.containers import list_containers
from shared.net import free_tcp_port
from tests.support import ROOT

REGISTRY_BIN = "/usr/bin/docker-registry"
DIND_IMAGE = "portside-dind:local"
EDGE_LOCAL = "portside-edge:local"  # built by deploy/dind/build-image.sh beside the node image
DIND_LABEL = "org.portside.test.dind"


@contextmanager
def registry(root: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """A registry process storing under `root`; yields its host:port. Docker allows plain HTTP to 127.0.0.1;
    another `host` (the DinD nodes' bridge gateway) needs the nodes' insecure-registries."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        raise RuntimeError("Debian's docker-registry is missing: run scripts/ensure-registry.sh")
    root.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port(host)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}:{port}\n"
    )
    with open(root / "registry.log", "wb") as out:
        process = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{host}:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start:\n{(root / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"{host}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def swarm_state(engine: docker.DockerClient) -> str:
    return str((engine.info().get("Swarm") or {}).get("LocalNodeState") or "inactive")


@contextmanager
def swarm_mode(engine: docker.DockerClient) -> Iterator[None]:
    """Swarm mode on the test engine for the duration. Plain containers and compose keep working beside it
    (checked by hand, and other tests run meanwhile). A swarm that was already on is left as it was."""
    started = swarm_state(engine) == "inactive"
    if started:
        engine.swarm.init(advertise_addr="127.0.0.1")
    try:
        yield
    finally:
        if started:
            engine.swarm.leave(force=True)


def remove_instance_stacks(engine: docker.DockerClient, instance: str, timeout: float = 90) -> None:
    """Every Swarm service of an instance, then wait until their task containers and networks are gone."""
    label = {"label": f"{LABEL_INSTANCE}={instance}"}
    if swarm_state(engine) != "active":
        return
    for service in engine.services.list(filters=label):
        service.remove()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not list_containers(engine, label) and not engine.networks.list(filters=label):
            return
        for network in engine.networks.list(filters=label):
            try:
                network.remove()
            except docker.errors.APIError:
                pass  # still in use by a task being removed
        time.sleep(0.5)


def app_service(engine: docker.DockerClient, instance: str, deployment_id: int) -> docker.models.services.Service:
    return engine.services.get(f"{instance}-{deployment_id}_app")


def running_tasks(service: docker.models.services.Service) -> list[dict]:
    return [t for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running"]


def gateway_address(engine: docker.DockerClient, container_id: str) -> str | None:
    """A task container's address on docker_gwbridge: reachable from this host without the routing mesh."""
    entry = (engine.networks.get("docker_gwbridge").attrs.get("Containers") or {}).get(container_id)
    return entry["IPv4Address"].split("/")[0] if entry else None


def ask_task(engine: docker.DockerClient, task: dict, port: int) -> str | None:
    address = gateway_address(engine, task["Status"]["ContainerStatus"]["ContainerID"])
    if address is None:
        return None
    try:
        return httpx.get(f"http://{address}:{port}/", timeout=2).text
    except httpx.HTTPError:
        return None


@dataclass
class SwapWatch:
    """Every 50 ms: the tasks Swarm lists as running are asked over HTTP (what the mesh would route to)."""

    engine: docker.DockerClient
    service: docker.models.services.Service
    port: int
    samples: int = 0
    failures: list[str] = field(default_factory=list)
    answers: list[tuple[float, str]] = field(default_factory=list)  # (time.monotonic(), body)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                tasks = running_tasks(self.service)
            except docker.errors.APIError as exc:
                tasks, _ = [], self.failures.append(f"engine: {exc}")
            self.samples += 1
            if not tasks:
                self.failures.append("no running task")
            for task in tasks:
                text = ask_task(self.engine, task, self.port)
                if text is None:
                    self.failures.append(f"task {task['ID'][:12]} listed running did not answer")
                else:
                    self.answers.append((time.monotonic(), text))
            self.stop.wait(max(0.0, 0.05 - (time.monotonic() - started)))


@dataclass
class Cluster:
    """Two Docker engines in containers on one bridge network, joined into one swarm (node 0 the manager)."""

    names: list[str]  # container names, which are also the nodes' hostnames
    addresses: list[str]  # on the bridge; each engine answers plain tcp on :2375 there (test network only)
    registry: str  # host:port on the bridge's gateway, allowed over plain HTTP by both engines

    def docker_host(self, node: int) -> str:
        return f"tcp://{self.addresses[node]}:2375"

    def client(self, node: int) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host(node), timeout=120)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300, check=True)


@contextmanager
def dind_cluster(engine: docker.DockerClient, root: Path, preload: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Build (cached) the node image, start two nodes, `swarm init` on the first and `join` from the second, and
    load `preload` images (base images the builder needs) into the manager. Everything is removed on exit."""
    subprocess.run(["bash", str(ROOT / "deploy" / "dind" / "build-image.sh")], check=True, timeout=900)
    name = f"pst-mn-{uuid4().hex[:8]}"
    network = engine.networks.create(name, driver="bridge", labels={DIND_LABEL: name})
    names = [f"{name}-n1", f"{name}-n2"]
    try:
        ipam = network.attrs["IPAM"]["Config"][0]
        with registry(root / "registry", host=ipam["Gateway"]) as address:
            for node in names:
                # Not --privileged: this host's bounding set lacks CAP_SYS_RESOURCE (see deploy/dind/entrypoint.sh).
                _docker("run", "-d", "--name", node, "--hostname", node, "--network", name, "--label",
                        f"{DIND_LABEL}={name}", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
                        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                        "--security-opt", "systempaths=unconfined", "--tmpfs", "/run", DIND_IMAGE,
                        "dockerd", "-H", "unix:///var/run/docker.sock", "-H", "tcp://0.0.0.0:2375",
                        "--storage-driver", "overlay2", "--insecure-registry", ipam["Subnet"])
            addresses = [
                engine.containers.get(node).attrs["NetworkSettings"]["Networks"][name]["IPAddress"] for node in names
            ]
            cluster = Cluster(names, addresses, address)
            clients = []
            deadline = time.monotonic() + 60
            for node in (0, 1):
                while True:
                    try:
                        clients.append(cluster.client(node))  # the SDK asks the engine's version at once
                        break
                    except docker.errors.DockerException:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
            for tag in preload:
                saved = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
                subprocess.run(["docker", "-H", cluster.docker_host(0), "load", "-q"], stdin=saved.stdout,
                               check=True, timeout=600, capture_output=True)
                saved.wait(60)
            clients[0].swarm.init(advertise_addr=addresses[0], listen_addr=f"{addresses[0]}:2377")
            token = clients[0].swarm.attrs["JoinTokens"]["Worker"]
            clients[1].swarm.join(remote_addrs=[f"{addresses[0]}:2377"], join_token=token,
                                  advertise_addr=addresses[1], listen_addr=f"{addresses[1]}:2377")
            for client in clients:
                client.close()
            yield cluster
    finally:
        for node in names:
            subprocess.run(["docker", "rm", "-f", "-v", node], capture_output=True, timeout=120, check=False)
        network.remove()


def node_ids(cluster: Cluster) -> dict[str, str]:
    """hostname -> Swarm node id, as the manager sees them."""
    client = cluster.client(0)
    try:
        return {n.attrs["Description"]["Hostname"]: n.id for n in client.nodes.list()}
    finally:
        client.close()


def tag_edge_image(cluster: Cluster) -> None:
    """The edge image (loaded into the manager with `preload`) under the name the runner looks for: it then
    pushes it instead of building it inside the node."""
    repository, tag = edge_image_tag(Settings(engine="swarm", registry=cluster.registry)).rsplit(":", 1)
    client = cluster.client(0)
    try:
        client.images.get(EDGE_LOCAL).tag(repository, tag)
    finally:
        client.close()

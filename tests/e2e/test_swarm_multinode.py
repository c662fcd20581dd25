"""PORTSIDE_ENGINE=swarm across two nodes on one machine: two Docker engines in containers (deploy/dind/, Debian's
docker.io) joined into one swarm, Debian's docker-registry on their bridge's gateway, Portside driving the manager
through PORTSIDE_DOCKER_HOST. An app placed on the second node is reached through the first node's port.

This kernel has no IPVS, so the routing mesh and service VIPs carry nothing (measured: the mesh port answers on
neither node, a VIP says "No route to host"; the overlay itself, VXLAN between the nodes, works). With the default
PORTSIDE_SWARM_PUBLISH=auto Portside then uses its edge proxy: one Caddy task per manager, the port published in
host mode, forwarding over the overlay to the app's dnsrr tasks. Where IPVS exists, auto means the mesh, and the
same assertions hold through it. The host's engine is not put in Swarm mode: no `swarm` marker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest
import yaml

from services.runner.swarm import EDGE_PREFIX
from shared.docker.containers import list_containers
from tests.conftest import copy_fixture
from tests.support import StartupFailed, System, running_system
from tests.swarm_support import (
    EDGE_LOCAL,
    Cluster,
    app_service,
    dind_cluster,
    node_ids,
    remove_instance_stacks,
    running_tasks,
    tag_edge_image,
)

pytestmark = pytest.mark.slow
HAS_IPVS = Path("/proc/net/ip_vs").exists()
# The flask fixture builds FROM python:3.11-slim; the edge image is built on this engine (deploy/dind/build-image.sh)
# and loaded, so the runner only pushes it (debian:bookworm-slim stays for a rebuild in the node).
PRELOAD = ("python:3.11-slim", "debian:bookworm-slim", EDGE_LOCAL)


@dataclass
class MultiNode:
    system: System
    cluster: Cluster
    manager: docker.DockerClient
    worker: docker.DockerClient


@pytest.fixture(scope="module")
def multinode(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiNode]:
    root = tmp_path_factory.mktemp("multinode")
    with dind_cluster(engine, root, preload=PRELOAD) as cluster:
        tag_edge_image(cluster)
        manager, worker = cluster.client(0), cluster.client(1)
        env = {
            "PORTSIDE_ENGINE": "swarm", "PORTSIDE_REGISTRY": cluster.registry,
            "PORTSIDE_DOCKER_HOST": cluster.docker_host(0),
            "PORTSIDE_SWARM_MONITOR_SECONDS": "3", "PORTSIDE_SWARM_HEALTH_START_SECONDS": "30",
            # Two engines in containers on two shared cores: the first pull of an image on the worker is slow.
            "PORTSIDE_READY_TIMEOUT_SECONDS": "180",
        }
        try:
            with running_system(root / "home", manager, extra_env=env) as system:
                try:
                    yield MultiNode(system, cluster, manager, worker)
                finally:
                    remove_instance_stacks(manager, system.instance)
        except StartupFailed as exc:
            pytest.fail(str(exc))
        finally:
            manager.close()
            worker.close()


def _place_on(system: System, deployment_id: int, hostname: str) -> None:
    """Edit the deployment's compose file as a user would: a placement constraint on the app service."""
    doc = yaml.safe_load(system.call("GET", f"/api/deployments/{deployment_id}")["data"]["compose_content"])
    app = doc["services"]["app"]
    app.setdefault("deploy", {})["placement"] = {"constraints": [f"node.hostname == {hostname}"]}
    system.call("PUT", f"/api/deployments/{deployment_id}/files", json={"compose": yaml.safe_dump(doc)})


def test_swarm_app_on_the_second_node_answers_through_the_first_nodes_port_and_stop_clears_both(
    multinode: MultiNode, tmp_path: Path
) -> None:
    system, cluster = multinode.system, multinode.cluster
    source = copy_fixture("python-flask", tmp_path)
    deployment_id = system.deploy_path(source)["deployment_id"]
    _place_on(system, deployment_id, cluster.names[1])
    outcome = system.deploy(deployment_id)
    assert outcome["status"] == "running", (outcome, system.events(deployment_id)[-4:])
    port = outcome["port"]

    # The app's task runs on the second node, pulled from the registry there.
    nodes = node_ids(cluster)
    service = app_service(multinode.manager, system.instance, deployment_id)
    tasks = running_tasks(service)
    assert [t["NodeID"] for t in tasks] == [nodes[cluster.names[1]]]
    assert multinode.worker.containers.list(filters={"label": f"com.docker.swarm.service.id={service.id}"})
    assert not multinode.manager.containers.list(filters={"label": f"com.docker.swarm.service.id={service.id}"})

    # Reached through the first node's published port.
    answer = httpx.get(f"http://{cluster.addresses[0]}:{port}/", timeout=10)
    assert answer.status_code == 200 and "hello from flask" in answer.text
    if not HAS_IPVS:  # PORTSIDE_SWARM_PUBLISH=auto chose the edge
        edge = multinode.manager.services.get(f"{system.instance}-{deployment_id}_{EDGE_PREFIX}{port}")
        assert [t["NodeID"] for t in running_tasks(edge)] == [nodes[cluster.names[0]]]
        assert edge.attrs["Endpoint"]["Ports"][0]["PublishMode"] == "host"
        assert service.attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"

    # Status and logs come from the manager for a task on another node.
    status = system.call("GET", f"/api/deployments/{deployment_id}/status")["data"]
    assert status["container_state"] == "running", status
    assert status["container_id"] == tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
    # No figures for a task on another node, and the status says where it runs (nodes named by host name).
    assert status["task_nodes"] == {cluster.names[1]: 1}, status
    assert cluster.names[1] in (status["engine_error"] or ""), status
    deadline = time.monotonic() + 60
    while True:
        entries = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 200})["data"]["entries"]
        if any(e["source"] == "app" for e in entries):
            break
        assert time.monotonic() < deadline, entries[-5:]
        time.sleep(1)

    # A redeploy swaps the task on node 2 start-first; through node 1's port no request fails meanwhile.
    app = source / "app.py"
    app.write_text(app.read_text().replace("hello from flask", "hello from flask v2"))
    failures: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=5) as client:
            while not stop.wait(0.05):
                try:
                    response = client.get(f"http://{cluster.addresses[0]}:{port}/")
                    (answers if response.status_code == 200 else failures).append(response.text[:80])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        second = system.deploy(deployment_id)
    finally:
        stop.set()
        poller.join(10)
    assert second["status"] == "running" and second["error_code"] is None, (second, system.events(deployment_id)[-4:])
    assert failures == [] and len(answers) > 20, (failures[:5], len(answers))
    assert "v2" in answers[-1] and any("v2" not in a for a in answers)
    assert [t["NodeID"] for t in running_tasks(service)] == [nodes[cluster.names[1]]]

    # Stop removes the stack: services on the manager, tasks and networks on both nodes.
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    assert system.call("GET", f"/api/deployments/{deployment_id}")["data"]["status"] == "stopped"
    stack = {"label": f"com.docker.stack.namespace={system.instance}-{deployment_id}"}
    assert multinode.manager.services.list(filters=stack) == []
    deadline = time.monotonic() + 60
    while True:
        left = [(i, c.name) for i, node in enumerate((multinode.manager, multinode.worker))
                for c in list_containers(node, stack)]
        left += [(i, n.name) for i, node in enumerate((multinode.manager, multinode.worker))
                 for n in node.networks.list(filters=stack)]
        if not left:
            break
        assert time.monotonic() < deadline, left
        time.sleep(1)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{cluster.addresses[0]}:{port}/", timeout=3)

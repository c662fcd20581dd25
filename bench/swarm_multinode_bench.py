"""Request latency to an app on the second node of a two-node swarm (Docker-in-Docker, as in
tests/e2e/test_swarm_multinode.py), through the first node's published port vs directly to the task.

Both are measured by one client on node 1, in the network namespace of the edge task there (so it sits on the
stack's overlay network): "through node 1" asks node 1's address at the published port (host-mode publish, the
edge proxy, the overlay to node 2), "direct" asks the task's overlay address (the overlay to node 2 only). A new
TCP connection per request, as a browser's first request; the two kinds interleaved so load drifts hit both. Also
the same path from this machine (the user's view). Writes bench/results/swarm_multinode.json."""

from __future__ import annotations

import http.client
import inspect
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker
import yaml

from services.runner.swarm import EDGE_PREFIX
from tests.conftest import copy_fixture
from tests.support import ROOT, running_system
from tests.swarm_support import (
    EDGE_LOCAL,
    app_service,
    dind_cluster,
    node_ids,
    remove_instance_stacks,
    running_tasks,
    tag_edge_image,
)

RESULTS = ROOT / "bench" / "results" / "swarm_multinode.json"
REQUESTS = 300


def _ask(host: str, port: int) -> float:
    """One request on a new connection, as the client inside the cluster does (httpx.get would add the cost of
    building a client, tens of ms, to every request)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/")
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200, response.status
    return (time.perf_counter() - started) * 1000


# Run inside the edge's network namespace: the same _ask, then both paths in turn, after a warm-up.
CLIENT = "import http.client, json, sys, time\n" + inspect.getsource(_ask) + """
edge_host, edge_port, task_host, task_port, n = sys.argv[1:6]
edge_port, task_port, n = int(edge_port), int(task_port), int(n)
for _ in range(20):
    _ask(edge_host, edge_port), _ask(task_host, task_port)
through, direct = [], []
for _ in range(n):
    through.append(_ask(edge_host, edge_port))
    direct.append(_ask(task_host, task_port))
print(json.dumps({"through": through, "direct": direct}))
"""


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(len(ordered) * 0.95)], 2), "mean_ms": round(statistics.fmean(ordered), 2)}


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-multinode-"))
    try:
        with dind_cluster(engine, work, preload=("python:3.11-slim", "debian:bookworm-slim", EDGE_LOCAL)) as cluster:
            tag_edge_image(cluster)
            manager = cluster.client(0)
            env = {"PORTSIDE_ENGINE": "swarm", "PORTSIDE_REGISTRY": cluster.registry,
                   "PORTSIDE_DOCKER_HOST": cluster.docker_host(0), "PORTSIDE_SWARM_PUBLISH": "edge",
                   "PORTSIDE_READY_TIMEOUT_SECONDS": "180"}
            with running_system(work / "home", manager, extra_env=env) as system:
                try:
                    deployment_id = system.deploy_path(copy_fixture("python-flask", work / "app"))["deployment_id"]
                    data = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
                    doc = yaml.safe_load(data["compose_content"])
                    doc["services"]["app"].setdefault("deploy", {})["placement"] = {
                        "constraints": [f"node.hostname == {cluster.names[1]}"]}
                    system.call("PUT", f"/api/deployments/{deployment_id}/files",
                                json={"compose": yaml.safe_dump(doc)})
                    outcome = system.deploy(deployment_id)
                    assert outcome["status"] == "running", outcome
                    port = outcome["port"]
                    internal = int(system.call("GET", f"/api/deployments/{deployment_id}")["data"]["internal_port"])
                    task = running_tasks(app_service(manager, system.instance, deployment_id))[0]
                    assert task["NodeID"] == node_ids(cluster)[cluster.names[1]]
                    task_ip = task["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
                    edge = manager.services.get(f"{system.instance}-{deployment_id}_{EDGE_PREFIX}{port}")
                    edge_container = running_tasks(edge)[0]["Status"]["ContainerStatus"]["ContainerID"]
                    raw = manager.containers.run(
                        "python:3.11-slim", ["python3", "-c", CLIENT, cluster.addresses[0], str(port), task_ip,
                                             str(internal), str(REQUESTS)],
                        network_mode=f"container:{edge_container}", remove=True, stdout=True, stderr=True)
                    inside = json.loads(raw.decode().strip().splitlines()[-1])
                    from_host = [_ask(cluster.addresses[0], port) for _ in range(REQUESTS)]
                    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
                finally:
                    remove_instance_stacks(manager, system.instance)
            manager.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    through, direct = _summary(inside["through"]), _summary(inside["direct"])
    result = {
        "requests_each": REQUESTS,
        "through_node1_port": through,
        "direct_to_task_on_node2": direct,
        "ratio_median": round(through["median_ms"] / direct["median_ms"], 2),
        "from_this_machine_through_node1": _summary(from_host),
        "note": "two DinD engines on a shared 2-core machine; PORTSIDE_SWARM_PUBLISH=edge (no IPVS in this kernel); "
                "a new TCP connection per request",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

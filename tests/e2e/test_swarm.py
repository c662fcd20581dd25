"""PORTSIDE_ENGINE=swarm on a single-node Swarm (the test engine in Swarm mode for this module only) with Debian's
docker-registry on loopback: deploy as a stack, a start-first swap that always has a healthy task serving, a
redeploy whose new image fails its health check rolled back by Swarm itself, stop removing everything.

This machine's kernel has no IPVS, so Swarm's routing mesh cannot carry traffic here (dockerd logs "Could not get
ipvs family information from the kernel"): the test that polls the published port every 50 ms runs only where
/proc/net/ip_vs exists. Here the swap is watched the way the mesh sees it: the tasks Swarm lists as running
(healthy) are asked over HTTP, from the host, every 50 ms."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

from shared.docker import LABEL_INSTANCE
from shared.docker.containers import list_containers
from tests.conftest import copy_fixture
from tests.support import StartupFailed, System, running_system
from tests.swarm_support import (
    SwapWatch,
    app_service,
    ask_task,
    registry,
    remove_instance_stacks,
    running_tasks,
    swarm_mode,
)

pytestmark = pytest.mark.swarm
HAS_IPVS = Path("/proc/net/ip_vs").exists()


@dataclass
class SwarmSystem:
    system: System
    registry: str


@pytest.fixture(scope="module")
def swarm(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmSystem]:
    root = tmp_path_factory.mktemp("swarm")
    with registry(root / "registry") as address, swarm_mode(engine):
        env = {
            "PORTSIDE_ENGINE": "swarm", "PORTSIDE_REGISTRY": address,
            # A short monitor keeps the rollback test short (production: 10 s); the boot allowance is the
            # production default, for a loaded 2-core machine.
            "PORTSIDE_SWARM_MONITOR_SECONDS": "3", "PORTSIDE_SWARM_HEALTH_START_SECONDS": "30",
            # The reconciler reads tasks (no events stream on Swarm): often, so a crash loop is seen in seconds.
            "PORTSIDE_RECONCILE_INTERVAL_SECONDS": "5",
            # The routing mesh's rendering (the default where IPVS exists); the edge proxy is proven across two
            # nodes in test_swarm_multinode.py.
            "PORTSIDE_SWARM_PUBLISH": "mesh",
        }
        try:
            with running_system(root / "home", engine, extra_env=env) as system:
                try:
                    yield SwarmSystem(system, address)
                finally:
                    # Before running_system removes containers by label: Swarm removes a stack's own tasks.
                    remove_instance_stacks(engine, system.instance)
        except StartupFailed as exc:
            pytest.fail(str(exc))


def _internal_port(system: System, deployment_id: int) -> int:
    return int(system.call("GET", f"/api/deployments/{deployment_id}")["data"]["internal_port"])


def test_swarm_deploy_runs_the_app_as_a_stack_with_its_image_from_the_registry(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    outcome = system.deploy(deployment_id)
    assert outcome["status"] == "running", (outcome, system.events(deployment_id)[-4:])
    image = system.call("GET", f"/api/deployments/{deployment_id}")["data"]["running_image_tag"]
    assert image.startswith(f"{swarm.registry}/portside/{system.instance}-deployment-{deployment_id}:")
    repo, tag = image.removeprefix(f"{swarm.registry}/").rsplit(":", 1)
    assert tag in httpx.get(f"http://{swarm.registry}/v2/{repo}/tags/list", timeout=10).json()["tags"]

    service = app_service(engine, system.instance, deployment_id)
    spec = service.attrs["Spec"]
    assert spec["Labels"][LABEL_INSTANCE] == system.instance
    assert spec["UpdateConfig"]["Order"] == "start-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert spec["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": _internal_port(system, deployment_id),
                                              "PublishedPort": outcome["port"], "PublishMode": "ingress"}]
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"][0] == "CMD-SHELL"
    # Ready means healthy where the app runs: the running task answers HTTP.
    tasks = running_tasks(service)
    assert len(tasks) == 1
    assert "hello from flask" in (ask_task(engine, tasks[0], _internal_port(system, deployment_id)) or "")
    # The status route reads the task's container; the relay follows the service's logs (every task, any node).
    status = system.call("GET", f"/api/deployments/{deployment_id}/status")["data"]
    assert status["container_state"] == "running" and status["health"] == "healthy"
    # Where the tasks run, by node: one node here, the one whose figures these are.
    assert status["task_nodes"] == {engine.info()["Name"]: 1} and status["engine_error"] is None, status
    deadline = time.monotonic() + 30
    while True:
        entries = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 200})["data"]["entries"]
        if any(e["source"] == "app" for e in entries):
            break
        assert time.monotonic() < deadline, entries[-5:]
        time.sleep(0.5)
    # Deleting the deployment removes its tags from the registry too (the layers go with its garbage collector).
    system.call("DELETE", f"/api/deployments/{deployment_id}")
    answer = httpx.get(f"http://{swarm.registry}/v2/{repo}/tags/list", timeout=10)
    assert answer.status_code == 404 or not answer.json().get("tags"), answer.text
    stack = {"label": f"com.docker.stack.namespace={system.instance}-{deployment_id}"}
    assert engine.services.list(filters=stack) == []


def test_swarm_redeploy_swaps_start_first_with_a_healthy_task_serving_throughout(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    source = copy_fixture("python-flask", tmp_path)
    deployment_id = system.deploy_path(source)["deployment_id"]
    assert system.deploy(deployment_id)["status"] == "running"
    service = app_service(engine, system.instance, deployment_id)
    old = {t["ID"] for t in running_tasks(service)}
    app = source / "app.py"
    app.write_text(app.read_text().replace("hello from flask", "hello from flask v2"))

    watch = SwapWatch(engine, service, _internal_port(system, deployment_id))
    poller = threading.Thread(target=watch.run, daemon=True)
    poller.start()
    try:
        second = system.deploy(deployment_id)
    finally:
        watch.stop.set()
        poller.join(10)
    assert second["status"] == "running" and second["error_code"] is None, (second, system.events(deployment_id)[-4:])
    assert watch.samples > 20 and watch.failures == [], (watch.samples, watch.failures[:5])
    assert any("v2" in a for _, a in watch.answers) and any("v2" not in a for _, a in watch.answers)
    new = running_tasks(service)
    assert len(new) == 1 and new[0]["ID"] not in old
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


def test_swarm_redeploy_whose_image_fails_its_health_check_is_rolled_back_by_swarm(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    source = copy_fixture("python-flask", tmp_path)
    deployment_id = system.deploy_path(source)["deployment_id"]
    first = system.deploy(deployment_id)
    assert first["status"] == "running", (first, system.events(deployment_id)[-4:])
    good_image = system.call("GET", f"/api/deployments/{deployment_id}")["data"]["running_image_tag"]
    # The new version runs but never answers HTTP: its health check fails, so Swarm never routes to it.
    app = source / "app.py"
    app.write_text("import time\ntime.sleep(10**6)\n" + app.read_text())
    broken = system.deploy(deployment_id)
    assert broken["status"] == "running", (broken, system.events(deployment_id)[-4:])
    assert broken["error_code"] in ("NOT_READY", "APP_CRASHED") and "previous image" in broken["error_message"]
    service = app_service(engine, system.instance, deployment_id)
    service.reload()
    assert service.attrs["UpdateStatus"]["State"] == "rollback_completed"
    assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0] == good_image
    assert any("Swarm rolled the update back" in e["message"] for e in system.events(deployment_id)), \
        system.events(deployment_id)[-4:]
    tasks = running_tasks(service)
    assert len(tasks) == 1
    text = ask_task(engine, tasks[0], _internal_port(system, deployment_id)) or ""
    assert "hello from flask" in text
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


def test_swarm_stop_removes_the_stack_its_tasks_and_its_network(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    outcome = system.deploy(deployment_id)
    assert outcome["status"] == "running", (outcome, system.events(deployment_id)[-4:])
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    data = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
    assert data["status"] == "stopped"
    stack = {"label": f"com.docker.stack.namespace={system.instance}-{deployment_id}"}
    assert engine.services.list(filters=stack) == []
    assert list_containers(engine, stack) == []
    assert engine.networks.list(filters=stack) == []


# Serves, then dies: a gunicorn worker exiting with code 3 makes its master halt with code 3 ("worker failed to
# boot"), so the task's container exits 3 after LIFETIME s, every time Swarm starts it again. A task is `running`
# only once its health check passed, and the first check runs 3 s after the start, then every 3 s: on a loaded
# machine a slow boot is healthy at 9 s, too close to a 10 s lifetime (the deploy itself then fails).
LIFETIME = 20
CRASH_LATER = f"import os\nimport threading\n\nthreading.Timer({LIFETIME}, os._exit, (3,)).start()\n"


def test_swarm_app_that_keeps_exiting_after_it_ran_ends_crashed_with_the_tasks_exit_code(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    source = copy_fixture("python-flask", tmp_path)
    app = source / "app.py"
    app.write_text(CRASH_LATER + app.read_text())
    deployment_id = system.deploy_path(source)["deployment_id"]
    outcome = system.deploy(deployment_id)
    assert outcome["status"] == "running", (outcome, system.events(deployment_id)[-4:])
    # Swarm replaces each task that exits; after crash_restart_limit (3) exits the single engine's rule says crashed.
    data = system.wait_status(deployment_id, {"crashed", "error", "stopped"}, timeout=240)
    assert (data["status"], data["error_code"], data["exit_code"]) == ("crashed", "APP_CRASHED", 3), data
    assert "Swarm replaced it" in data["error_message"] and "exit (3)" in data["error_message"], data
    # Taken down as a crash is on the single engine: no service, task container or network left.
    stack = {"label": f"com.docker.stack.namespace={system.instance}-{deployment_id}"}
    assert engine.services.list(filters=stack) == []
    assert list_containers(engine, stack) == []
    assert engine.networks.list(filters=stack) == []


@pytest.mark.skipif(not HAS_IPVS, reason="no IPVS in this kernel (/proc/net/ip_vs): Swarm's routing mesh cannot "
                                         "carry traffic here")
def test_swarm_redeploy_through_the_routing_mesh_has_zero_failed_requests(
    swarm: SwarmSystem, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = swarm.system
    source = copy_fixture("python-flask", tmp_path)
    deployment_id = system.deploy_path(source)["deployment_id"]
    port = system.deploy(deployment_id)["port"]
    app = source / "app.py"
    app.write_text(app.read_text().replace("hello from flask", "hello from flask v2"))
    failures: list[str] = []
    answers: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.05):
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/", timeout=2).text)
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        assert system.deploy(deployment_id)["status"] == "running"
    finally:
        stop.set()
        poller.join(10)
    assert failures == [] and any("v2" in a for a in answers)
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})

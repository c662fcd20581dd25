"""Faults a single machine can throw at Portside, each checked by the end state it leaves (status, error code,
containers, ports, events): a dead engine, a full disk, a worker killed mid-job, NATS and Postgres restarting,
and fifty deploys at once."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import docker
import httpx
import pytest

from shared.embedded import start_nats, start_postgres
from shared.net import free_tcp_port, os_port_free
from tests.conftest import copy_fixture
from tests.support import System, running_system


@pytest.fixture
def fresh(engine: docker.DockerClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A factory for a system with its own settings (each test gets its own)."""
    stack = []

    def start(extra_env: dict[str, str] | None = None, args: list[str] | None = None) -> System:
        context = running_system(tmp_path / f"home{len(stack)}", engine, extra_env, args)
        system = context.__enter__()
        stack.append(context)
        return system

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def test_dead_docker_engine_fails_fast_with_docker_unavailable(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    system = fresh({"PORTSIDE_DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"})
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    started = time.monotonic()
    refused = system.call("POST", f"/api/deployments/{deployment_id}/deploy", expect=503)
    assert time.monotonic() - started < 10
    assert refused["error_code"] == "DOCKER_UNAVAILABLE" and "Docker engine" in refused["detail"]
    state = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
    assert state["status"] == "error" and state["error_code"] == "DOCKER_UNAVAILABLE"
    status = system.call("GET", f"/api/deployments/{deployment_id}/status")["data"]
    assert status["engine_error"]


def test_disk_threshold_above_free_space_fails_with_insufficient_disk(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    system = fresh({"PORTSIDE_MIN_FREE_DISK_MB": str(10**9)})
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    refused = system.call("POST", f"/api/deployments/{deployment_id}/deploy", expect=507)
    assert refused["error_code"] == "INSUFFICIENT_DISK" and "PORTSIDE_MIN_FREE_DISK_MB" in refused["detail"]
    state = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
    assert state["status"] == "error" and state["error_code"] == "INSUFFICIENT_DISK"


def _slow_starting_flask(dest: Path, seconds: int) -> Path:
    source = copy_fixture("python-flask", dest)
    app = source / "app.py"
    app.write_text(f"import time\ntime.sleep({seconds})\n" + app.read_text())
    return source


def test_runner_killed_while_starting_is_finished_once_by_another_replica(
    fresh, engine: docker.DockerClient, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    system = fresh({"PORTSIDE_ACK_WAIT_SECONDS": "6"}, ["--replicas", "runner=2"])
    deployment_id = system.deploy_path(_slow_starting_flask(tmp_path, 8))["deployment_id"]
    system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    pid = None
    deadline = time.monotonic() + 300
    while pid is None and time.monotonic() < deadline:
        for event in system.events(deployment_id):
            message = event["message"] or ""
            if "runner pid" in message:
                pid = int(message.rsplit("runner pid", 1)[1].strip(" )"))
        time.sleep(0.2)
    assert pid, "the runner never started the container"
    os.kill(pid, signal.SIGKILL)
    state = system.wait_status(deployment_id, {"running", "crashed", "error"}, timeout=180)
    assert state["status"] == "running", state
    assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
    assert len(system.containers(engine, deployment_id)) == 1
    statuses = [e["status"] for e in system.events(deployment_id)]
    assert statuses.count("running") == 1
    pids = {
        e["message"].rsplit("runner pid", 1)[1].strip(" )")
        for e in system.events(deployment_id)
        if "runner pid" in (e["message"] or "")
    }
    assert len(pids) == 2  # the second replica took the job over
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


@pytest.mark.slow
def test_builder_killed_mid_build_has_its_job_finished_by_another_replica(  # type: ignore[no-untyped-def]
    fresh, engine: docker.DockerClient, tmp_path: Path
) -> None:
    system = fresh({"PORTSIDE_ACK_WAIT_SECONDS": "6"}, ["--replicas", "builder=2"])
    generated = system.deploy_path(copy_fixture("python-flask", tmp_path))
    deployment_id = generated["deployment_id"]
    # A build step that takes a while, so the kill lands mid-build.
    lines = generated["dockerfile"].splitlines()
    lines.insert(max(i for i, line in enumerate(lines) if line.startswith("CMD")), "RUN sleep 15")
    system.call("PUT", f"/api/deployments/{deployment_id}/files", json={"dockerfile": "\n".join(lines) + "\n"})
    system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    pid = None
    deadline = time.monotonic() + 300
    while pid is None and time.monotonic() < deadline:
        for event in system.events(deployment_id):
            if (event["message"] or "").startswith("build started (builder pid"):
                pid = int(event["message"].split("builder pid", 1)[1].split()[0])
        time.sleep(0.2)
    assert pid, "no builder started the build"
    time.sleep(3)
    assert system.call("GET", f"/api/deployments/{deployment_id}")["data"]["status"] == "building"
    os.kill(pid, signal.SIGKILL)
    state = system.wait_status(deployment_id, {"running", "crashed", "error", "build_failed"}, timeout=300)
    assert state["status"] == "running", state
    assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
    assert len(system.containers(engine, deployment_id)) == 1
    events = system.events(deployment_id)
    # A redelivered build starts again (building -> building) and says which replica took it.
    builders = [int(e["message"].split("builder pid", 1)[1].split()[0]) for e in events
                if (e["message"] or "").startswith("build started (builder pid")]
    assert builders[0] == pid and any(other != pid for other in builders[1:]), [e["message"] for e in events]
    assert [e["status"] for e in events].count("running") == 1
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


def test_nats_restart_mid_pipeline_does_not_lose_the_deployment(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "nats"
    port = free_tcp_port()
    nats = start_nats(data, port=port)
    try:
        system = fresh({"PORTSIDE_NATS_URL": nats.url})
        deployment_id = system.deploy_path(_slow_starting_flask(tmp_path, 3))["deployment_id"]
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
        assert system.wait_status(deployment_id, {"building", "starting"}, timeout=60)["status"] in (
            "building",
            "starting",
        )
        nats.stop()
        time.sleep(3)
        nats = start_nats(data, port=port)
        state = system.wait_status(deployment_id, {"running", "crashed", "error", "build_failed"}, timeout=240)
        assert state["status"] == "running", state
        assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    finally:
        nats.stop()


def test_postgres_restart_mid_pipeline_does_not_lose_the_deployment(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pg = start_postgres(tmp_path / "pg" / "data", cleanup_mode="delete")
    try:
        system = fresh({"PORTSIDE_DATABASE_URL": pg.url})
        deployment_id = system.deploy_path(_slow_starting_flask(tmp_path, 3))["deployment_id"]
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
        assert system.wait_status(deployment_id, {"building", "starting"}, timeout=60)["status"] in (
            "building",
            "starting",
        )
        # The wheel's own pg_ctl, as the user pgserver runs PostgreSQL as (it refuses root).
        from pgserver._commands import pg_ctl

        pg_ctl(["-m", "fast", "-w", "restart"], pgdata=pg.data_dir, user=pg.server.system_user)  # type: ignore[attr-defined]
        state = _wait_status_through_outage(system, deployment_id, timeout=240)
        assert state["status"] == "running", state
        assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    finally:
        # pgserver only knows the postmaster it started; stop the restarted one by its data directory.
        from pgserver._commands import pg_ctl

        with contextlib.suppress(Exception):
            pg_ctl(["-m", "fast", "-w", "stop"], pgdata=pg.data_dir, user=pg.server.system_user)  # type: ignore[attr-defined]
        pg.stop()


def _wait_status_through_outage(system: System, deployment_id: int, timeout: float) -> dict:
    """Like wait_status, but a request that fails while the database comes back is simply retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return system.wait_status(
                deployment_id,
                {"running", "crashed", "error", "build_failed"},
                timeout=max(1, deadline - time.monotonic()),
            )
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.mark.slow
def test_fifty_concurrent_deploys_get_fifty_ports_and_leave_nothing_behind(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path)
    ids = [system.deploy_path(source)["deployment_id"] for _ in range(50)]
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    states = [system.wait_status(d, {"running", "crashed", "error", "build_failed"}, timeout=900) for d in ids]
    try:
        assert [s["status"] for s in states] == ["running"] * 50, [
            (s["id"], s["status"], s["error_message"]) for s in states if s["status"] != "running"
        ]
        ports = [s["assigned_port"] for s in states]
        assert len(set(ports)) == 50
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        for deployment_id in ids:
            system.call("POST", f"/api/deployments/{deployment_id}/stop")
        for deployment_id in ids:
            # A deployment that never ran has nothing to stop: any settled status ends the wait.
            system.wait_status(deployment_id, {"stopped", "build_failed", "error", "crashed"}, timeout=300)
    for deployment_id in ids:
        assert system.containers(engine, deployment_id) == []
    assert all(os_port_free("0.0.0.0", port) for port in ports)


def test_own_dockerfile_with_an_unavailable_base_fails_fast_then_builds_from_portsides_plan(
    fresh, engine: docker.DockerClient, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from shared.preflight import needed_images, unavailable_images

    source = copy_fixture("python-dockerfile-unavailable-base", tmp_path)
    if not unavailable_images(engine, needed_images((source / "Dockerfile").read_text())):
        pytest.skip("python:3.12-alpine is present or pullable on this engine")
    system = fresh()
    generated = system.deploy_path(source)
    assert "python:3.12-alpine" in generated["dockerfile"]  # the repository's own file
    started = time.monotonic()
    refused = system.call("POST", f"/api/deployments/{generated['deployment_id']}/deploy", expect=424)
    assert time.monotonic() - started < 30
    assert refused["error_code"] == "BASE_IMAGE_UNAVAILABLE"
    assert "python:3.12-alpine" in refused["detail"] and "use_repo_dockerfile" in refused["detail"]
    state = system.call("GET", f"/api/deployments/{generated['deployment_id']}")["data"]
    assert state["status"] == "error" and state["error_code"] == "BASE_IMAGE_UNAVAILABLE"
    assert not system.containers(engine, generated["deployment_id"])

    repo_id = system.call("GET", "/api/repositories")["data"][0]["id"]
    own = system.call("POST", f"/api/deployments/generate/{repo_id}", json={"use_repo_dockerfile": False})["data"]
    assert "python:3.12-alpine" not in own["dockerfile"] and "Generated by Portside" in own["dockerfile"]
    result = system.deploy(own["deployment_id"])
    assert result["status"] == "running", result
    answer = httpx.get(result["url"], timeout=10)
    assert answer.status_code == 200 and "Portside's own plan" in answer.text

"""A deployment's life after its first start: redeploy, fallback, rollback, crashes noticed through Docker
events, the reconciler, delete. Each test asserts the end state: status, containers, ports, events."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import httpx
import pytest

from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE, LABEL_MANAGED
from shared.net import os_port_free
from tests.conftest import copy_fixture
from tests.support import System


def _text(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text


def test_failed_redeploy_falls_back_and_rollback_returns_to_the_previous_image(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-flask", tmp_path)
    deployment_id = system.deploy_path(source)["deployment_id"]
    first = system.deploy(deployment_id)
    assert first["status"] == "running"
    port = first["port"]

    # A broken new version: the image builds, the app dies at start. The last good image runs again.
    app = source / "app.py"
    good = app.read_text()
    app.write_text("raise SystemExit('config missing')\n" + good)
    broken = system.deploy(deployment_id)
    assert broken["status"] == "running"
    assert broken["error_code"] in ("APP_CRASHED", "NOT_READY")
    assert "previous image" in broken["error_message"]
    assert "hello from flask" in _text(port)

    # A good new version replaces it on the same port; rollback goes back to the first image.
    app.write_text(good.replace("hello from flask", "hello from flask v2"))
    second = system.deploy(deployment_id)
    assert second["status"] == "running" and second["error_code"] is None, (second, system.events(deployment_id)[-4:])
    assert second["port"] == port
    assert "v2" in _text(port)
    # Through the CLI, as a user would: the releases, then back to the previous one.
    listed = system.cli("releases", str(deployment_id), "--json")
    assert listed.returncode == 0, listed.stderr
    releases = json.loads(listed.stdout)
    running = system.call("GET", f"/api/deployments/{deployment_id}")["data"]["running_image_tag"]
    assert len(releases) >= 2 and releases[0]["image_tag"] == running
    rolled = system.cli("rollback", str(deployment_id))
    assert rolled.returncode == 0, rolled.stderr
    said = " ".join(rolled.stdout.split())  # rich wraps at 80 columns off a terminal
    assert f"deployment {deployment_id} rolled back to the previous release; running at http" in said
    text = _text(port)
    assert "hello from flask" in text and "v2" not in text
    full = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
    assert full["running_image_tag"] != full["image_tag"]  # the rollback runs an older image than the last build
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


@pytest.mark.slow
def test_rollback_restores_the_configuration_the_image_ran_with(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-flask", tmp_path)
    app = source / "app.py"
    app.write_text(app.read_text().replace('return "hello from flask\\n"', 'return os.environ["GREETING"] + "\\n"')
                   .replace("from flask import Flask", "import os\n\nfrom flask import Flask"))
    deployment_id = system.deploy_path(source)["deployment_id"]
    env = f"/api/deployments/{deployment_id}/env"
    system.call("PUT", env, json={"variables": [{"key": "GREETING", "value": "first", "secret": True}]})
    port = system.deploy(deployment_id)["port"]
    assert _text(port) == "first\n"
    system.call("PUT", env, json={"variables": [{"key": "GREETING", "value": "second"}, {"key": "X", "value": "1"}]})
    assert system.deploy(deployment_id)["status"] == "running"
    assert _text(port) == "second\n"

    # Back to the previous image AND the variables it ran with (a secret comes back still a secret).
    rolled = system.call("POST", f"/api/deployments/{deployment_id}/rollback", params={"wait": "true"}, timeout=300)
    assert rolled["data"]["status"] == "running", rolled
    assert _text(port) == "first\n"
    assert system.call("GET", env)["data"]["variables"] == [
        {"key": "GREETING", "value": "********", "secret": True, "build": False}]
    releases = system.call("GET", f"/api/deployments/{deployment_id}/releases")["data"]
    assert [r["env_keys"] for r in releases] == [["GREETING"], ["GREETING", "X"], ["GREETING"]]

    # Any listed release is a target; one of another deployment's (or none) is a 404 with a code.
    second = releases[1]
    rolled_to = system.cli("rollback", str(deployment_id), "--to", str(second["id"]))
    assert rolled_to.returncode == 0 and f"rolled back to release {second['id']}" in " ".join(rolled_to.stdout.split())
    assert _text(port) == "second\n"
    missing_cli = system.cli("rollback", str(deployment_id), "--to", str(2**40))
    assert missing_cli.returncode == 1 and "RELEASE_NOT_FOUND" in missing_cli.stderr
    missing = system.call("POST", f"/api/deployments/{deployment_id}/rollback", params={"release_id": 2**40},
                          expect=404)
    assert missing["error_code"] == "RELEASE_NOT_FOUND"
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


def test_rollback_without_an_earlier_image_is_refused(system: System, tmp_path: Path) -> None:
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    refused = system.call("POST", f"/api/deployments/{deployment_id}/rollback", expect=409)
    assert refused["error_code"] == "NO_PREVIOUS_IMAGE"


def test_app_that_exits_after_running_is_marked_crashed_and_taken_down(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path)
    # Exits with code 4 ten seconds after it started answering.
    (source / "app.py").write_text((source / "app.py").read_text() + (
        "\nimport os, threading\nthreading.Timer(10, lambda: os._exit(4)).start()\n"))
    generated = system.deploy_path(source)
    deployment_id = generated["deployment_id"]
    # Without a restart policy Docker does not bring it back, so the first exit is final.
    compose = generated["compose"].replace("restart: unless-stopped", "restart: 'no'")
    system.call("PUT", f"/api/deployments/{deployment_id}/files", json={"compose": compose})
    started = system.deploy(deployment_id)
    assert started["status"] == "running"
    crashed = system.wait_status(deployment_id, {"crashed"}, timeout=60)
    assert crashed["status"] == "crashed"
    assert crashed["exit_code"] == 4 and crashed["error_code"] == "APP_CRASHED"
    assert system.containers(engine, deployment_id) == []
    assert os_port_free("0.0.0.0", started["port"])
    assert [e["status"] for e in system.events(deployment_id)][-2:] == ["running", "crashed"]


def test_container_removed_behind_portsides_back_is_noticed(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    started = system.deploy(deployment_id)
    assert started["status"] == "running"
    for container in system.containers(engine, deployment_id):
        container.remove(force=True)
    crashed = system.wait_status(deployment_id, {"crashed"}, timeout=30)
    assert crashed["status"] == "crashed"
    assert os_port_free("0.0.0.0", started["port"])


def test_reconciler_removes_containers_of_a_stopped_deployment(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    deployment_id = system.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
    # A container carrying this deployment's labels while Postgres says it is not running (e.g. left by a
    # crash of Portside itself between `compose up` and recording the stop).
    leftover = engine.containers.run(
        "python:3.12-slim", ["sleep", "600"], detach=True,
        labels={LABEL_MANAGED: "true", LABEL_INSTANCE: system.instance, LABEL_DEPLOYMENT: str(deployment_id)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and system.containers(engine, deployment_id):
        time.sleep(0.5)
    assert system.containers(engine, deployment_id) == []
    assert any("reconciler" in (e["message"] or "") for e in system.events(deployment_id))
    assert leftover.id


def test_delete_with_purge_removes_containers_images_and_the_row(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    deployment_id = system.deploy_path(copy_fixture("node-express", tmp_path))["deployment_id"]
    assert system.deploy(deployment_id)["status"] == "running"
    owner = [f"{LABEL_INSTANCE}={system.instance}", f"{LABEL_DEPLOYMENT}={deployment_id}"]
    assert engine.images.list(filters={"label": owner})
    assert system.call("DELETE", f"/api/deployments/{deployment_id}", params={"purge": "true"}, timeout=300)["data"][
        "deleted"
    ]
    gone = system.call("GET", f"/api/deployments/{deployment_id}", expect=404)
    assert gone["error_code"] == "DEPLOYMENT_NOT_FOUND"
    assert system.containers(engine, deployment_id) == []
    assert engine.images.list(filters={"label": owner}) == []
    assert engine.networks.list(filters={"label": owner}) == []


def _free_port_in_range() -> int:
    return next(p for p in range(39000, 40000) if os_port_free("0.0.0.0", p))


def test_requested_host_port_held_by_another_process_is_refused(system: System, tmp_path: Path) -> None:
    import socket

    source = copy_fixture("python-flask", tmp_path)
    with socket.socket() as holder:
        # Hold a port inside Portside's range, as another program on the machine would.
        held = _free_port_in_range()
        holder.bind(("0.0.0.0", held))
        holder.listen()
        # Asked for at generate time, the port is refused at once and no deployment is made.
        repo = system.call("POST", "/api/repositories", json={"path": str(source)})["data"]
        refused = system.call("POST", f"/api/deployments/generate/{repo['id']}", json={"port": held}, expect=409)
        assert refused["error_code"] == "PORT_IN_USE"
        assert system.call("GET", "/api/deployments", params={"repo_id": repo["id"]})["data"] == []

    # Free at generate time, taken before the deploy: the deploy is refused fast and the deployment ends `error`.
    port = _free_port_in_range()
    deployment_id = system.call("POST", f"/api/deployments/generate/{repo['id']}", json={"port": port})["data"][
        "deployment_id"
    ]
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", port))
        holder.listen()
        started = time.monotonic()
        refused = system.call("POST", f"/api/deployments/{deployment_id}/deploy", expect=409)
        assert time.monotonic() - started < 10
        assert refused["error_code"] == "PORT_IN_USE"
        state = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
        assert state["status"] == "error" and state["error_code"] == "PORT_IN_USE"


def test_generate_port_is_the_host_port_the_app_is_published_on(system: System, tmp_path: Path) -> None:
    port = _free_port_in_range()
    repo = system.call("POST", "/api/repositories", json={"path": str(copy_fixture("node-express", tmp_path))})["data"]
    out_of_range = system.call("POST", f"/api/deployments/generate/{repo['id']}", json={"port": 80}, expect=422)
    assert out_of_range["error_code"] == "PORT_OUT_OF_RANGE"
    generated = system.call("POST", f"/api/deployments/generate/{repo['id']}", json={"stack": "node", "port": port})
    deployment_id = generated["data"]["deployment_id"]
    result = system.deploy(deployment_id)
    assert result["status"] == "running", system.events(deployment_id)[-4:]
    assert result["port"] == port
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)



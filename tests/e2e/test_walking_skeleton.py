"""A repository becomes a running container through the whole pipeline, checked over HTTP and SSE."""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

import docker
import httpx
import pytest

from shared.net import os_port_free
from tests.conftest import copy_fixture
from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, SSECollector, System


@pytest.mark.parametrize(
    ("fixture", "as_git_url", "stack", "framework", "greeting"),
    [
        ("python-flask", False, "python", "flask", "hello from flask"),
        ("node-express", True, "node", "express", "hello from express"),
    ],
)
def test_deploy_answers_http_streams_logs_and_stops_clean(
    system: System, engine: docker.DockerClient, tmp_path: Path,
    fixture: str, as_git_url: bool, stack: str, framework: str, greeting: str,
) -> None:
    source = copy_fixture(fixture, tmp_path, git=as_git_url)
    body = {"url": f"file://{source}", "branch": "main"} if as_git_url else {"path": str(source)}
    repo = system.call("POST", "/api/repositories", json=body)["data"]
    detection = system.call("POST", f"/api/deployments/detect/{repo['id']}")["data"]
    assert (detection["stack"], detection["framework"]) == (stack, framework)

    generated = system.call("POST", f"/api/deployments/generate/{repo['id']}", json={})["data"]
    deployment_id = generated["deployment_id"]
    files = Path(generated["docker_path"])
    assert (files / "Dockerfile").read_text() == generated["dockerfile"]
    assert (files / "docker-compose.yml").is_file() and (files / ".dockerignore").is_file()

    sse = SSECollector(f"{system.url}/api/deployments/{deployment_id}/logs/stream", headers=system.auth_headers)
    try:
        result = system.call("POST", f"/api/deployments/{deployment_id}/deploy", params={"wait": "true"}, timeout=900)[
            "data"
        ]
        assert result["status"] == "running", result
        port = result["port"]
        assert 20000 <= port <= 40000
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert answer.status_code == 200 and greeting in answer.text

        # Build lines and the app's own output arrive on the same SSE stream.
        # The default build memory cap keeps PORTSIDE_BUILDKIT=auto on the classic builder (tests/e2e/test_buildkit.py
        # builds with BuildKit).
        assert sse.wait_for("building with the classic builder: PORTSIDE_BUILDKIT=auto"), sse.events[-5:]
        assert sse.wait_for("Step 1/"), sse.events[-5:]
        assert sse.wait_for("request to /", timeout=30), sse.events[-10:]
        assert any(event == "build" for event, _ in sse.events)
        assert any(event == "app" for event, _ in sse.events)
    finally:
        sse.close()

    status = system.call("GET", f"/api/deployments/{deployment_id}/status")["data"]
    assert status["container_state"] == "running" and status["memory_mb"] and status["memory_mb"] > 0
    assert status["ports"]
    logs = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 500})["data"]
    assert "request to /" in logs["logs"]

    stopped = system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)[
        "data"
    ]
    assert stopped["status"] == "stopped"
    assert system.containers(engine, deployment_id) == []
    assert os_port_free("0.0.0.0", port)
    timeline = [e["status"] for e in system.call("GET", f"/api/deployments/{deployment_id}/events")["data"]]
    assert timeline[:4] == ["generating", "ready", "queued", "building"]
    assert timeline[-3:] == ["running", "stopping", "stopped"]


def test_two_deployments_at_once_get_different_ports(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    ids = [system.deploy_path(copy_fixture("python-flask", tmp_path / str(i)))["deployment_id"] for i in range(2)]

    def deploy(deployment_id: int) -> dict:
        return system.call("POST", f"/api/deployments/{deployment_id}/deploy", params={"wait": "true"}, timeout=900)[
            "data"
        ]

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(deploy, ids))
    try:
        assert [r["status"] for r in results] == ["running", "running"]
        ports = {r["port"] for r in results}
        assert len(ports) == 2
        for port in ports:
            assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        for deployment_id in ids:
            system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)
    for deployment_id in ids:
        assert system.containers(engine, deployment_id) == []


def test_app_that_exits_at_start_is_crashed_with_exit_code_and_last_lines(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path)
    (source / "app.py").write_text("import sys\nprint('cannot start: missing SECRET_KEY', flush=True)\nsys.exit(3)\n")
    generated = system.deploy_path(source)
    # The generated command would run gunicorn; make the container run the failing script directly.
    dockerfile = generated["dockerfile"].rsplit("CMD", 1)[0] + 'CMD ["python", "app.py"]\n'
    system.call("PUT", f"/api/deployments/{generated['deployment_id']}/files", json={"dockerfile": dockerfile})
    result = system.call(
        "POST", f"/api/deployments/{generated['deployment_id']}/deploy", params={"wait": "true"}, timeout=900
    )["data"]
    assert result["status"] == "crashed"
    assert result["error_code"] == "APP_CRASHED"
    assert "cannot start: missing SECRET_KEY" in result["error_message"]
    full = system.call("GET", f"/api/deployments/{generated['deployment_id']}")["data"]
    assert full["exit_code"] == 3
    assert system.containers(engine, generated["deployment_id"]) == []


def test_failing_build_marks_build_failed_with_the_failing_step(system: System, tmp_path: Path) -> None:
    generated = system.deploy_path(copy_fixture("python-flask", tmp_path))
    head, cmd = generated["dockerfile"].rsplit("\nCMD", 1)
    dockerfile = head + "\nRUN echo checking the config && exit 7\nCMD" + cmd
    system.call("PUT", f"/api/deployments/{generated['deployment_id']}/files", json={"dockerfile": dockerfile})
    result = system.call(
        "POST", f"/api/deployments/{generated['deployment_id']}/deploy", params={"wait": "true"}, timeout=900
    )["data"]
    assert result["status"] == "build_failed"
    assert result["error_code"] == "BUILD_FAILED"
    assert "exit 7" in result["error_message"]


def test_api_errors_carry_a_code_and_a_sentence(system: System, tmp_path: Path) -> None:
    missing = system.call("POST", "/api/repositories", json={"path": "/no/such/dir"}, expect=404)
    assert missing["error_code"] == "REPO_NOT_FOUND" and "does not exist" in missing["detail"]
    both = system.call("POST", "/api/repositories", json={"path": "/tmp", "url": "x"}, expect=422)
    assert both["error_code"] == "VALIDATION_ERROR"
    unknown = system.call("POST", "/api/deployments/999999/deploy", expect=404)
    assert unknown["error_code"] == "DEPLOYMENT_NOT_FOUND"
    generated = system.deploy_path(copy_fixture("node-express", tmp_path))
    bad = system.call(
        "PUT", f"/api/deployments/{generated['deployment_id']}/files", json={"dockerfile": "RUN echo\n"}, expect=422
    )
    assert bad["error_code"] == "INVALID_DOCKERFILE"
    listing = system.call("GET", "/api/deployments", params={"repo_id": 999999})
    assert listing == {"success": True, "data": []}


def test_cli_deploy_prints_the_url_and_stop_frees_it(system: System, tmp_path: Path) -> None:
    source = copy_fixture("node-express", tmp_path)
    env_api = ["--api", system.url]
    # `portside login` keeps a personal token in a file only the user can read; later commands use it.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("PORTSIDE_TOKEN", None)
    login = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "login", "--email", ADMIN_EMAIL, "--password-stdin", *env_api],
        input=ADMIN_PASSWORD + "\n", capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
    )
    assert login.returncode == 0, login.stderr
    credentials = tmp_path / "config" / "portside" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    done = subprocess.run([sys.executable, "-m", "services.cli.main", "deploy", str(source), *env_api],
                          capture_output=True, text=True, timeout=900, cwd=ROOT, env=env, check=False)
    assert done.returncode == 0, done.stderr
    url = next(word for word in done.stdout.split() if word.startswith("http://"))
    assert "hello from express" in httpx.get(url, timeout=10).text
    deployment_id = int(done.stdout.split("deployment ")[1].split()[0])
    stopped = subprocess.run([sys.executable, "-m", "services.cli.main", "stop", str(deployment_id), *env_api],
                             capture_output=True, text=True, timeout=300, cwd=ROOT, env=env, check=False)
    assert "stopped" in stopped.stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=3)


def test_cli_detect_json_matches_the_api(system: System, tmp_path: Path) -> None:
    source = copy_fixture("python-fastapi", tmp_path)
    done = subprocess.run([sys.executable, "-m", "services.cli.main", "detect", str(source), "--json"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    offline = json.loads(done.stdout)
    repo = system.call("POST", "/api/repositories", json={"path": str(source)})["data"]
    online = system.call("POST", f"/api/deployments/detect/{repo['id']}")["data"]
    assert offline == online


def test_cli_domains_add_list_and_remove_names(system: System, tmp_path: Path) -> None:
    mine = system.deploy_path(copy_fixture("static-html", tmp_path / "mine"))["deployment_id"]
    theirs = system.deploy_path(copy_fixture("static-html", tmp_path / "theirs"))["deployment_id"]
    tag = f"d{mine}-{os.getpid()}"  # names unique to this run: the same API may serve other tests' names

    def names(deployment_id: int) -> list[str]:
        done = system.cli("domains", "ls", str(deployment_id), "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["domains"]

    added = system.cli("domains", "add", str(mine), f"app.{tag}.example.com", f"API.{tag}.example.com.")
    assert added.returncode == 0, added.stderr
    assert f"app.{tag}.example.com" in added.stdout  # the table of names it now has
    assert names(mine) == [f"app.{tag}.example.com", f"api.{tag}.example.com"]  # stored in canonical form
    again = system.cli("domains", "add", str(mine), f"app.{tag}.example.com")  # already there: nothing changes
    assert again.returncode == 0 and names(mine) == [f"app.{tag}.example.com", f"api.{tag}.example.com"]

    taken = system.cli("domains", "add", str(theirs), f"api.{tag}.example.com")
    assert taken.returncode == 1 and "DOMAIN_TAKEN" in taken.stderr and names(theirs) == []
    invalid = system.cli("domains", "add", str(theirs), "not_a_name")
    assert invalid.returncode == 1 and "INVALID_DOMAIN" in invalid.stderr

    removed = system.cli("domains", "rm", str(mine), f"app.{tag}.example.com")
    assert removed.returncode == 0, removed.stderr
    assert names(mine) == [f"api.{tag}.example.com"]
    missing = system.cli("domains", "rm", str(mine), f"app.{tag}.example.com")
    assert missing.returncode == 1 and "not a name set on deployment" in " ".join(missing.stderr.split())
    assert names(mine) == [f"api.{tag}.example.com"]
    assert system.cli("domains", "rm", str(mine), f"api.{tag}.example.com").returncode == 0
    assert names(mine) == []
    unknown = system.cli("domains", "ls", "999999")
    assert unknown.returncode == 1 and "DEPLOYMENT_NOT_FOUND" in unknown.stderr


def test_edited_dockerignore_is_saved_exported_and_used(system: System, tmp_path: Path) -> None:
    source = copy_fixture("static-html", tmp_path)
    generated = system.deploy_path(source)
    deployment_id = generated["deployment_id"]
    edited = generated["dockerignore"] + "secret-notes.txt\n"
    saved = system.call("PUT", f"/api/deployments/{deployment_id}/files", json={"dockerignore": edited})["data"]
    assert saved["saved"] is True
    assert system.call("GET", f"/api/deployments/{deployment_id}")["data"]["dockerignore_content"] == edited
    assert (Path(generated["docker_path"]) / ".dockerignore").read_text() == edited
    refused = system.call("PUT", f"/api/deployments/{deployment_id}/files", json={}, expect=422)
    assert refused["error_code"] == "VALIDATION_ERROR"

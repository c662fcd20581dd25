"""Portside in containers: deploy/compose.yaml from Portside's own image (`make images`), on a fresh project
(its own volumes, home directory, API port and instance name), driven over HTTP like a user. A fixture app is
cloned from a git daemon on the host, built, run and answers 200; then the builder is scaled to 3 replicas and
ten deploys run at once; a request sequence hops between the two API replicas (past the proxy) and an SSE stream
resumes on the other replica; then everything is taken down and nothing of the project is left on the engine."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from uuid import uuid4

import docker
import httpx
import pytest

from tests.compose_support import Stack, compose_stack, git_daemon, leftovers
from tests.support import System

# The module's stack takes minutes to come up on a loaded 2-core machine, and the first test runs eleven deploys.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SCALED_DEPLOYS = 10
# The `portside` user of Portside's image (deploy/Dockerfile).
RUNTIME_UID = 10001
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


# Talking to one replica past the proxy: the API answers only for its allowed host names (DNS rebinding).
HOST = {"Host": "localhost"}


def _sse_ids(url: str, token: str, deployment_id: int, count: int, last_event_id: str | None = None) -> list[int]:
    """The ids of the first `count` log events of a deployment's SSE stream at `url` (progress events have none)."""
    headers = {**HOST, "Authorization": f"Bearer {token}",
               **({"Last-Event-ID": last_event_id} if last_event_id else {})}
    ids: list[int] = []
    with httpx.stream("GET", f"{url}/api/deployments/{deployment_id}/logs/stream", headers=headers,
                      timeout=httpx.Timeout(30, read=30)) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("id:"):
                ids.append(int(line.partition(":")[2].strip()))
                if len(ids) == count:
                    break
    return ids


def test_compose_stack_api_replicas_answer_any_request_and_sse_resumes_on_the_other(
    stack: Stack, git_url: str, engine: docker.DockerClient
) -> None:
    urls = stack.replica_urls(engine, "api", 8080)  # the two replicas, each past the proxy
    assert len(urls) == 2, urls
    one, other = (httpx.Client(base_url=url, headers=HOST, timeout=60) for url in urls)
    system = stack.system
    email, password = f"fleet-{uuid4().hex[:8]}@example.com", "correct horse battery"
    system.call("POST", "/api/users", json={"email": email, "password": password, "role": "member"})

    # Log in on one replica, refresh on the other (the refresh token is spent once, in PostgreSQL), act on both.
    pair = one.post("/api/auth/login", json={"email": email, "password": password})
    assert pair.status_code == 200, pair.text
    renewed = other.post("/api/auth/refresh", json={"refresh_token": pair.json()["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    again = one.post("/api/auth/refresh", json={"refresh_token": pair.json()["refresh_token"]})
    assert again.status_code == 401, again.text  # spent on the other replica
    me = one.get("/api/auth/me", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["data"]["email"] == email, me.text

    # A deploy asked for on one replica with ?wait=true is answered by that replica when the runner's fact
    # arrives, and the other replica reads the same outcome.
    admin = {"Authorization": f"Bearer {system.token}"}
    repo = other.post("/api/repositories", json={"url": git_url}, headers=admin, timeout=120)
    assert repo.status_code in (200, 201), repo.text
    generated = one.post(f"/api/deployments/generate/{repo.json()['data']['id']}", json={}, headers=admin,
                         timeout=120)
    assert generated.status_code in (200, 201, 202), generated.text
    deployment_id = generated.json()["data"]["deployment_id"]
    outcome = other.post(f"/api/deployments/{deployment_id}/deploy", params={"wait": "true"}, headers=admin,
                         timeout=900)
    assert outcome.status_code == 200 and outcome.json()["data"]["status"] == "running", outcome.text
    assert one.get(f"/api/deployments/{deployment_id}", headers=admin).json()["data"]["status"] == "running"

    # The per-account login limit (10 a minute) counts attempts on both replicas together.
    stranger = {"email": f"nobody-{uuid4().hex[:8]}@example.com", "password": "wrong password!"}
    answers = [(one, other)[n % 2].post("/api/auth/login", json=stranger).status_code for n in range(11)]
    assert answers == [401] * 10 + [429], answers

    # SSE: read a few events from one replica, then resume on the other with Last-Event-ID: it continues with
    # exactly the next line of the logs stream (ids are stream sequences, the same for every replica).
    history = system.call("GET", f"/api/deployments/{deployment_id}/logs", params={"lines": 10_000})["data"]
    sequence = [entry["seq"] for entry in history["entries"]]
    assert len(sequence) > 10, history
    head = _sse_ids(urls[0], system.token, deployment_id, 5)
    tail = _sse_ids(urls[1], system.token, deployment_id, 3, last_event_id=str(head[-1]))
    assert head + tail == sequence[:8], (head, tail, sequence[:10])
    # And through the one address, the proxy (which picks a replica) resumes the same way.
    assert _sse_ids(system.url, system.token, deployment_id, 2, last_event_id=str(tail[-1])) == sequence[8:10]
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
    one.close()
    other.close()


def test_compose_stack_builder_container_killed_mid_build_has_its_job_redelivered(
    stack: Stack, git_url: str, engine: docker.DockerClient
) -> None:
    system = stack.system
    stack.scale(engine, "builder", 3)  # (the first test scaled it already)
    repo_id = system.call("POST", "/api/repositories", json={"url": git_url}, timeout=120)["data"]["id"]
    generated = system.call("POST", f"/api/deployments/generate/{repo_id}", json={}, timeout=120)["data"]
    deployment_id = generated["deployment_id"]
    # A build step that takes a while, so the kill lands mid-build.
    lines = generated["dockerfile"].splitlines()
    lines.insert(max(i for i, line in enumerate(lines) if line.startswith("CMD")), "RUN sleep 20")
    system.call("PUT", f"/api/deployments/{deployment_id}/files", json={"dockerfile": "\n".join(lines) + "\n"})
    system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    deadline = time.monotonic() + 300
    while not (took := _builders(system, deployment_id)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert took, "no builder started the build"
    (host,) = took
    (victim,) = [c for c in stack.containers(engine, "builder") if c.attrs["Config"]["Hostname"] == host]
    time.sleep(3)
    assert system.call("GET", f"/api/deployments/{deployment_id}")["data"]["status"] == "building"
    victim.kill()
    state = system.wait_status(deployment_id, FINAL, timeout=600)
    assert state["status"] == "running", state
    assert httpx.get(f"http://127.0.0.1:{state['assigned_port']}/", timeout=10).status_code == 200
    events = system.events(deployment_id)
    starts = [e["message"] for e in events if (e["message"] or "").startswith("build started (builder pid")]
    assert len(starts) >= 2, [e["message"] for e in events]  # redelivered after the ack deadline, built again
    assert [e["status"] for e in events].count("running") == 1
    print(f"killed builder {host}; the build was started again by {starts[1:]}")
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
    victim.start()  # a killed container counts as stopped by hand: Docker does not restart it
    stack.wait_healthy(engine, "builder", 3)


ELSEWHERE = """
# A detector, a builder and a runner as if on another machine: their own PORTSIDE_HOME (nothing of the API's
# clones), only the installation's keys copied over, and the same NATS, PostgreSQL and Docker engine. The runner's
# home is a directory of "its machine" at the same path inside, as deploy/compose.yaml mounts PORTSIDE_HOME: its
# `docker compose` hands paths under it (bind-mount sources) to the engine, which resolves them on the host.
services:
  detector-elsewhere:
    image: ${PORTSIDE_IMAGE:-portside:local}
    command: ["detector"]
    env_file: [{path: "ENV_FILE", required: false}]
    environment: {PORTSIDE_HOME: /home/portside}
    extra_hosts: ["host.docker.internal:host-gateway"]
    volumes: ["secrets:/secrets:ro", "KEYS:/home/portside/keys:ro"]
  builder-elsewhere:
    image: ${PORTSIDE_IMAGE:-portside:local}
    command: ["builder"]
    env_file: [{path: "ENV_FILE", required: false}]
    environment: {PORTSIDE_HOME: /home/portside}
    extra_hosts: ["host.docker.internal:host-gateway"]
    volumes: ["secrets:/secrets:ro", "KEYS:/home/portside/keys:ro", "/var/run/docker.sock:/var/run/docker.sock"]
  runner-elsewhere:
    image: ${PORTSIDE_IMAGE:-portside:local}
    command: ["runner"]
    env_file: [{path: "ENV_FILE", required: false}]
    environment: {PORTSIDE_HOME: RUNNER_HOME, PORTSIDE_PROBE_HOST: host.docker.internal,
                  PORTSIDE_PROXY_ENABLED: "false"}
    extra_hosts: ["host.docker.internal:host-gateway"]
    volumes: ["secrets:/secrets:ro", "RUNNER_HOME:RUNNER_HOME", "KEYS:RUNNER_HOME/keys:ro",
              "/var/run/docker.sock:/var/run/docker.sock"]
"""


def test_compose_stack_workers_without_the_apis_clone_fetch_the_registered_commit(
    stack: Stack, git_url: str, engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    runner_home = elsewhere / "runner-home"
    runner_home.mkdir()
    os.chown(runner_home, RUNTIME_UID, RUNTIME_UID)
    override = elsewhere / "elsewhere.yaml"
    override.write_text(ELSEWHERE.replace("ENV_FILE", str(stack.env_file)).replace("KEYS", str(stack.home / "keys"))
                        .replace("RUNNER_HOME", str(runner_home)))
    stack.extra_files.append(override)
    # The elsewhere workers take every detect, generate, build and start. One `up` for the three: an `up` that
    # scales one service brings the others back to their replicas in compose.yaml.
    workers = ("detector", "builder", "runner")
    stack.compose("up", "-d", "--no-recreate", *(a for w in workers for a in ("--scale", f"{w}=0")))
    try:
        stack.compose("up", "-d", "--no-recreate", "detector-elsewhere", "builder-elsewhere", "runner-elsewhere")
        system = stack.system
        repo = system.call("POST", "/api/repositories", json={"url": git_url}, timeout=120)["data"]
        deployment_id = _generate(system, repo["id"])
        outcome = system.deploy(deployment_id)
        assert outcome["status"] == "running", system.call("GET", f"/api/deployments/{deployment_id}")
        assert httpx.get(f"http://127.0.0.1:{outcome['port']}/", timeout=10).status_code == 200
        (builder,) = stack.containers(engine, "builder-elsewhere")
        assert _builders(system, deployment_id) == {builder.attrs["Config"]["Hostname"]}
        # Its own checkout, at the commit the API cloned; the API's clone is not on its disk.
        listing = builder.exec_run(["sh", "-c", "ls /home/portside/workspace; git -C /home/portside/workspace/* "
                                                "rev-parse HEAD; test -e '" + repo["path"] + "' && echo HAS_CLONE"],
                                   user="portside")
        text = listing.output.decode()
        assert text.split()[0].startswith(f"{repo['id']}-") and "HAS_CLONE" not in text, text
        assert repo["commit_sha"] and text.split()[1] == repo["commit_sha"], (text, repo)
        # The runner started it from its own checkout of the same commit.
        (runner,) = stack.containers(engine, "runner-elsewhere")
        script = f"ls {runner_home}/workspace; test -e '{repo['path']}' && echo HAS_CLONE"
        listing = runner.exec_run(["sh", "-c", script], user="portside")
        assert listing.output.decode().split() == [f"{repo['id']}-{repo['commit_sha']}"], listing.output
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
    finally:
        stack.compose("rm", "-sf", "detector-elsewhere", "builder-elsewhere", "runner-elsewhere", check=False)
        stack.compose("up", "-d", "--no-recreate", *(a for w in workers for a in ("--scale", f"{w}=1")))
        for worker in workers:
            stack.wait_healthy(engine, worker, 1)

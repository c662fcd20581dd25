"""Metrics and health of a whole Portside (`portside up`) against the real engine: after deploying a compose app
with two services, every service's /metrics shows its counters moved (requests, jobs, durations, log lines,
samples, deployments by status, consumer lag), every /readyz answers 200 with its checks, the metrics token is
required, and GET /api/deployments/{id}/metrics has samples of both services and their sum."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import docker
import httpx
import pytest

from tests.support import StartupFailed, System, running_system

pytestmark = pytest.mark.slow  # a build and a start: about two minutes

TOKEN = "metrics-token-for-the-e2e-test-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVICES = ("api", "logstream", "detector", "builder", "runner")

DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /srv
RUN useradd --create-home web
USER web
EXPOSE 8000
CMD ["python", "-m", "http.server", "8000"]
"""
COMPOSE = """\
services:
  web:
    build: .
    ports:
      - "8000"
  sidecar:
    image: python:3.12-slim
    command: ["python", "-c", "import time\\nwhile True: time.sleep(1)"]
"""


@pytest.fixture(scope="module")
def system(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    env = {"PORTSIDE_METRICS_INTERVAL_SECONDS": "2", "PORTSIDE_METRICS_TOKEN": TOKEN}
    try:
        with running_system(tmp_path_factory.mktemp("portside-metrics"), engine, extra_env=env) as running:
            yield running
    except StartupFailed as exc:
        pytest.fail(str(exc))


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = httpx.get(f"{url}/metrics", headers=AUTH, timeout=30)
    assert resp.status_code == 200, resp.text
    series = {}
    for line in resp.text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").split(",") if p) if labels else frozenset()
        series[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return series


def value(series: dict, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def compose_app(root: Path) -> Path:
    app = root / "two-services"
    app.mkdir()
    (app / "Dockerfile").write_text(DOCKERFILE)
    (app / "compose.yaml").write_text(COMPOSE)
    return app


def test_metrics_of_every_service_move_after_deploying_a_two_service_compose_app(
    system: System, tmp_path: Path
) -> None:
    urls = system.metrics_urls()
    assert set(urls) == set(SERVICES)
    before = {name: scrape(url) for name, url in urls.items()}

    generated = system.deploy_path(compose_app(tmp_path))
    deployment_id = generated["deployment_id"]
    outcome = system.deploy(deployment_id)
    assert outcome["status"] == "running", system.call("GET", f"/api/deployments/{deployment_id}")

    # Per-app history: both compose services, per service and summed, every 2 s.
    deadline = time.monotonic() + 60
    while True:
        data = system.call("GET", f"/api/deployments/{deployment_id}/metrics")["data"]
        full = [s for s in data["samples"] if set(s["services"]) == {"web", "sidecar"}]
        if len(full) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert data["interval_seconds"] == 2.0
    assert len(full) >= 2, data
    sample = full[-1]
    web, sidecar, total = sample["services"]["web"], sample["services"]["sidecar"], sample["total"]
    assert web["memory_mb"] > 0 and sidecar["memory_mb"] > 0
    assert total["memory_mb"] == pytest.approx(web["memory_mb"] + sidecar["memory_mb"], abs=0.02)
    assert total["network_rx_bytes"] == web["network_rx_bytes"] + sidecar["network_rx_bytes"]
    stamps = [datetime.fromisoformat(s["at"]) for s in data["samples"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    newer = system.call("GET", f"/api/deployments/{deployment_id}/metrics",
                        params={"since": full[-2]["at"]})["data"]["samples"]
    assert newer and all(datetime.fromisoformat(s["at"]) > datetime.fromisoformat(full[-2]["at"]) for s in newer)

    after = {name: scrape(url) for name, url in urls.items()}

    def moved(process: str, name: str, **labels: str) -> float:
        return value(after[process], name, **labels) - value(before[process], name, **labels)

    deploy_route = {"service": "api", "method": "POST", "route": "/api/deployments/{deployment_id}/deploy"}
    assert moved("api", "portside_http_requests_total", **deploy_route, status="200") == 1
    assert value(after["api"], "portside_deployments", status="running") >= 1
    for consumer in ("detector", "builder", "runner", "logstream"):
        assert ("portside_consumer_pending_messages", frozenset({("consumer", consumer)})) in after["api"]

    def jobs(service: str, kind: str) -> float:
        return moved(service, "portside_jobs_total", service=service, kind=kind, outcome="ok")

    assert jobs("builder", "deploy.generate.requested") >= 1
    assert jobs("builder", "deploy.build.requested") == 1
    assert jobs("runner", "deploy.build.completed") == 1
    assert jobs("logstream", "deploy.run.completed") == 1
    assert moved("builder", "portside_job_duration_seconds_count", stage="build") == 1
    assert moved("builder", "portside_job_duration_seconds_sum", stage="build") > 0
    assert moved("runner", "portside_job_duration_seconds_count", stage="start") == 1
    assert moved("builder", "portside_log_lines_relayed_total", source="build") > 0
    assert moved("runner", "portside_app_samples_total") >= 4
    assert ("portside_consumer_pending_messages", frozenset({("consumer", "runner")})) in after["runner"]

    for name, url in urls.items():
        ready = httpx.get(f"{url}/readyz", timeout=15)
        assert ready.status_code == 200, (name, ready.text)
        checks = ready.json()["checks"]
        assert set(checks) == ({"postgres", "nats"} if name == "detector" else {"postgres", "nats", "docker"})
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"alive": True}

    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)


def test_metrics_need_the_token_or_an_admin(system: System) -> None:
    urls = system.metrics_urls()
    for name, url in urls.items():
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            resp = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
            assert resp.status_code == 401, (name, headers, resp.status_code)
            assert resp.json()["error_code"] == "UNAUTHORIZED"
    # The API also answers its admin (this System's calls carry the first user's token).
    resp = system.client.get("/metrics", headers=system.auth_headers)
    assert resp.status_code == 200 and "portside_http_requests_total" in resp.text

"""The pieces of metrics and structured logs that need no server: the log formatters and the job context, the
stage a handler's duration counts under, histogram buckets, request counting by route template, the /metrics
token, the usage sums and sampling rounds."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from services.api.main import create_app
from services.api.routes.deployments import usage_sum
from services.api.schemas import ServiceUsage
from services.runner.sampler import Usage, merge, round_start
from shared import metrics
from shared.config import Settings
from shared.logs import JsonFormatter, TextFormatter, configure_logging, job_context
from shared.messaging.subjects import Subject
from shared.observe import worker_port


def _record(message: str, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("portside.test", logging.WARNING, __file__, 1, message, (), exc_info)


def test_json_formatter_writes_one_object_with_the_jobs_ids() -> None:
    formatter = JsonFormatter("builder")
    with job_context("corr-123", 42):
        line = formatter.format(_record("building step 1"))
    body = json.loads(line)
    assert body["message"] == "building step 1" and body["service"] == "builder" and body["level"] == "warning"
    assert body["correlation_id"] == "corr-123" and body["deployment_id"] == 42
    assert "\n" not in line
    outside = json.loads(formatter.format(_record("idle")))
    assert "correlation_id" not in outside and "deployment_id" not in outside


def test_json_formatter_keeps_the_traceback_inside_the_line() -> None:
    line = JsonFormatter("runner").format(_record("failed", exc=True))
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exc_info"]


def test_text_formatter_names_the_deployment_and_correlation() -> None:
    with job_context("c-9", 7):
        line = TextFormatter("runner").format(_record("started"))
    assert "[deployment 7 corr=c-9]" in line and line.endswith("started")


def test_job_context_follows_tasks_the_handler_starts_and_ends_with_the_handler() -> None:
    seen: list[tuple[str | None, int | None]] = []

    async def child() -> None:
        from shared.logs import correlation_id, deployment_id

        await asyncio.sleep(0)
        seen.append((correlation_id.get(), deployment_id.get()))

    async def handler() -> None:
        with job_context("corr-task", 5):
            await asyncio.create_task(child())
        await asyncio.create_task(child())

    asyncio.run(handler())
    assert seen == [("corr-task", 5), (None, None)]


def test_configure_logging_writes_json_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("detector", stream)
        with job_context("corr-json", 3):
            logging.getLogger("portside.x").info("detected %s", "python")
        body = json.loads(stream.getvalue().strip().splitlines()[-1])
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    assert body == {**body, "message": "detected python", "correlation_id": "corr-json", "deployment_id": 3,
                    "service": "detector"}


def test_durations_count_under_their_stage() -> None:
    assert metrics.stage_of(Subject.DETECT_REQUESTED) == "detect"
    assert metrics.stage_of(Subject.BUILD_REQUESTED) == "build"
    assert metrics.stage_of(Subject.BUILD_COMPLETED) == "start"  # the runner starts what was built
    assert metrics.stage_of(Subject.RUN_REQUESTED) == "start"
    assert metrics.stage_of(Subject.RUN_COMPLETED) == "follow"
    assert metrics.stage_of(Subject.DELETE_REQUESTED) == "delete"


def test_duration_histogram_puts_a_build_and_a_detection_in_their_buckets() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_job_duration_seconds", "t", ["stage"], buckets=metrics.DURATION_BUCKETS,
                          registry=registry)
    histogram.labels("detect").observe(0.2)
    histogram.labels("build").observe(95)
    text = generate_latest(registry).decode()
    assert 't_job_duration_seconds_bucket{le="0.1",stage="detect"} 0.0' in text
    assert 't_job_duration_seconds_bucket{le="0.25",stage="detect"} 1.0' in text
    assert 't_job_duration_seconds_bucket{le="60.0",stage="build"} 0.0' in text
    assert 't_job_duration_seconds_bucket{le="120.0",stage="build"} 1.0' in text
    assert 't_job_duration_seconds_count{stage="build"} 1.0' in text
    # A build may take up to the build timeout (30 min): the largest bucket still tells it apart from +Inf.
    assert max(metrics.DURATION_BUCKETS) >= Settings().build_timeout_seconds


def _client(tmp_path: Path, **overrides: object) -> TestClient:
    settings = Settings(home=tmp_path, database_url="postgresql://unit@localhost/unit", nats_url="nats://127.0.0.1:1",
                        allowed_hosts=["testserver"], **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _count(route: str, status: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "portside_http_requests_total", {"service": "api", "method": "GET", "route": route, "status": status}
    )
    return value or 0.0


def test_requests_count_by_route_template_not_by_raw_path(tmp_path: Path) -> None:
    client = _client(tmp_path)
    before = _count("/api/deployments/{deployment_id}/status", "401")
    for deployment_id in (1, 2, 3):
        assert client.get(f"/api/deployments/{deployment_id}/status").status_code == 401
    assert _count("/api/deployments/{deployment_id}/status", "401") == before + 3
    assert _count("/api/deployments/1/status", "401") == 0


def test_api_metrics_refuses_without_a_token_and_a_wrong_token(tmp_path: Path) -> None:
    client = _client(tmp_path, metrics_token="s3cret-metrics-token")
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHORIZED"
    assert "PORTSIDE_METRICS_TOKEN" in anonymous.json()["detail"]


def test_api_metrics_answers_the_metrics_token(tmp_path: Path) -> None:
    # No lifespan: the scrape-time figures (consumer lag, deployments) cannot be read and are skipped.
    client = _client(tmp_path, metrics_token="s3cret-metrics-token")
    resp = client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert "portside_http_requests_total" in resp.text


def test_healthz_answers_without_dependencies(tmp_path: Path) -> None:
    assert _client(tmp_path).get("/healthz").json() == {"alive": True}


def test_usage_sum_adds_services_and_keeps_unknown_figures_null() -> None:
    total = usage_sum([
        ServiceUsage(cpu_percent=1.25, memory_mb=40.5, network_rx_bytes=100, network_tx_bytes=None),
        ServiceUsage(cpu_percent=0.5, memory_mb=10.25, network_rx_bytes=20, network_tx_bytes=None),
    ])
    assert total == ServiceUsage(cpu_percent=1.75, memory_mb=50.75, network_rx_bytes=120, network_tx_bytes=None)
    assert usage_sum([]) == ServiceUsage()


def test_two_containers_of_one_service_merge_into_one_usage() -> None:
    a = Usage(1, "web", 2.0, 30.0, 10, None)
    b = Usage(1, "web", 1.0, None, 5, 7)
    assert merge(a, b) == Usage(1, "web", 3.0, 30.0, 15, 7)


def test_sampling_rounds_are_stamped_with_the_start_of_their_interval() -> None:
    base = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC).timestamp()
    assert round_start(base + 14.9, 15) == round_start(base + 0.1, 15) == datetime.fromtimestamp(base, UTC)
    assert round_start(base + 15.0, 15) == datetime.fromtimestamp(base + 15, UTC)


def test_worker_ports_count_up_from_the_base_unless_one_is_given() -> None:
    settings = Settings(metrics_base_port=9100)
    assert [worker_port(settings, s) for s in ("detector", "builder", "runner")] == [9100, 9101, 9102]
    assert worker_port(Settings(metrics_port=9555), "runner") == 9555


def test_since_is_read_as_utc_even_at_the_edges_of_datetime() -> None:
    from datetime import timedelta, timezone

    from services.api.routes.deployments import as_utc

    assert as_utc(datetime(2026, 11, 29, 7, 0)) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert as_utc(datetime(2026, 11, 29, 9, 0, tzinfo=plus_two)) == datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    assert as_utc(datetime(1, 1, 1, tzinfo=plus_two)) == datetime.min.replace(tzinfo=UTC)
    assert as_utc(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=5)))) == datetime.max.replace(
        tzinfo=UTC
    )


def test_a_worker_whose_metrics_port_is_taken_keeps_running_without_its_listener(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    from faststream.nats import NatsBroker

    from shared.db.session import make_engine
    from shared.observe import Readiness, serve_observe

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(home=tmp_path, metrics_port=port)
        readiness = Readiness(settings, make_engine("postgresql://unit@localhost/unit", application_name="unit"),
                              NatsBroker("nats://127.0.0.1:1"), docker=False)
        with caplog.at_level(logging.ERROR):
            asyncio.run(asyncio.wait_for(serve_observe(readiness, "builder"), 30))  # returns; no SystemExit
    assert f"could not listen on 127.0.0.1:{port}" in caplog.text


def test_portside_up_skips_ports_in_use_for_worker_listeners(tmp_path: Path) -> None:
    import socket

    from services.cli.supervisor import Child, Supervisor

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        base = busy.getsockname()[1]
        settings = Settings(home=tmp_path, metrics_base_port=base, api_port=base + 1)
        supervisor = Supervisor(settings, {})
        supervisor.children = [Child("api", 0, "m"), Child("detector", 0, "m"), Child("runner", 0, "m")]
        supervisor.assign_metrics_ports()
    ports = [c.metrics_port for c in supervisor.children]
    assert ports[0] is None and base not in ports and base + 1 not in ports
    assert ports[1] is not None and ports[2] is not None and ports[1] < ports[2]
    listed = json.loads((tmp_path / "metrics-ports.json").read_text())
    assert listed["detector"] == f"http://127.0.0.1:{ports[1]}" and listed["api"].endswith(f":{base + 1}")

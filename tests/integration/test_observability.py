"""A worker's /metrics, /healthz and /readyz listener against a real nats-server and PostgreSQL: the wrapper
counts jobs by outcome and times them, every line a handler logs carries the job's ids, consumer lag is read from
JetStream, and /readyz answers 503 naming NATS while the server is stopped (this test's own server), 200 again
once it is back."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.embedded import EmbeddedNats, start_nats
from shared.logs import JsonFormatter
from shared.messaging.events import DetectRequested
from shared.messaging.subjects import Subject
from shared.net import free_tcp_port
from shared.observe import serve_observe
from shared.worker import WorkerContext, make_context, subscribe

log = logging.getLogger("portside.test.observability")


@pytest.fixture
def own_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = start_nats(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def json_lines() -> AsyncIterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("detector"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
async def worker(settings: Settings, own_nats: EmbeddedNats) -> AsyncIterator[tuple[WorkerContext, str, list[int]]]:
    """A detector replica on this test's own nats-server whose handler logs, and raises for repository 13."""
    quick = settings.model_copy(update={
        "nats_url": own_nats.url, "metrics_port": free_tcp_port(), "max_deliver": 2, "retry_base_seconds": 0.1,
    })
    ctx = make_context("detector", quick)
    handled: list[int] = []

    async def on_detect(event: DetectRequested) -> None:
        log.info("looking at repository %s", event.repository_id)
        await asyncio.sleep(0.05)
        handled.append(event.repository_id)
        if event.repository_id == 13:
            raise RuntimeError("unlucky repository")

    subscribe(ctx, {Subject.DETECT_REQUESTED: on_detect})
    await ctx.start()
    listener = asyncio.create_task(serve_observe(ctx.readiness(docker=False), "detector"))
    url = f"http://127.0.0.1:{quick.metrics_port}"
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            try:
                await http.get(f"{url}/healthz")
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    yield ctx, url, handled
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    await ctx.close()


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in Prometheus text, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        head, _, rest = series.partition("{")
        label_text = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and label_text == wanted:
            return float(value)
    return 0.0


async def _wait(predicate, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_worker_metrics_count_jobs_by_outcome_and_time_them(
    worker: tuple[WorkerContext, str, list[int]], json_lines: io.StringIO
) -> None:
    ctx, url, handled = worker
    async with httpx.AsyncClient() as http:
        before = (await http.get(f"{url}/metrics")).text
        good, bad = DetectRequested(repository_id=7), DetectRequested(repository_id=13)
        await ctx.publish(Subject.DETECT_REQUESTED, good)
        await ctx.publish(Subject.DETECT_REQUESTED, bad)
        # 7 once; 13 twice (max_deliver 2), then given up.
        await _wait(lambda: sorted(handled) == [7, 13, 13])
        # The outcome is counted after the handler returns, and the duration last, after a give-up's own
        # database write and publish: wait until all three deliveries are timed.
        count = "portside_job_duration_seconds_count"
        deadline = time.monotonic() + 20
        while True:
            after = (await http.get(f"{url}/metrics")).text
            timed = _sample(after, count, stage="detect") - _sample(before, count, stage="detect")
            if timed >= 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

    kind = Subject.DETECT_REQUESTED.value

    def moved(outcome: str) -> float:
        labels = {"service": "detector", "kind": kind, "outcome": outcome}
        return _sample(after, "portside_jobs_total", **labels) - _sample(before, "portside_jobs_total", **labels)

    assert (moved("ok"), moved("retried"), moved("failed")) == (1, 1, 1)
    assert _sample(after, count, stage="detect") - _sample(before, count, stage="detect") == 3
    assert _sample(after, "portside_job_duration_seconds_sum", stage="detect") > 0
    # Lag of this worker's own durable consumer, read at scrape time: everything was delivered.
    assert 'portside_consumer_pending_messages{consumer="detector"} 0.0' in after

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    mine = [line for line in lines if line["message"] == "looking at repository 7"]
    assert mine and mine[0]["correlation_id"] == good.correlation_id
    done = [line for line in lines if line["message"].startswith("detector: deploy.detect.requested handled in")]
    assert [line["correlation_id"] for line in done] == [good.correlation_id]
    # The wrapper's own lines about the failing job carry its correlation id too.
    failures = [line for line in lines if "unlucky repository" in line["message"]]
    assert failures and all(line["correlation_id"] == bad.correlation_id for line in failures)


async def test_readyz_says_nats_is_down_while_the_server_is_stopped(
    worker: tuple[WorkerContext, str, list[int]], own_nats: EmbeddedNats
) -> None:
    _, url, _ = worker
    async with httpx.AsyncClient(timeout=15) as http:
        ready = await http.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"postgres": "ok", "nats": "ok"}

        own_nats.stop()
        down = await http.get(f"{url}/readyz")
        assert down.status_code == 503
        body = down.json()
        assert body["error_code"] == "NOT_READY" and body["checks"]["postgres"] == "ok"
        assert body["checks"]["nats"] != "ok" and "nats" in body["detail"]
        # Alive all the same: a supervisor must not restart a process that waits for its broker.
        assert (await http.get(f"{url}/healthz")).status_code == 200

        # The fixture stops it after the worker closed.
        own_nats.process = start_nats(own_nats.data_dir, port=own_nats.port).process
        deadline = time.monotonic() + 20
        while (again := await http.get(f"{url}/readyz")).status_code != 200:
            assert time.monotonic() < deadline, again.text
            await asyncio.sleep(0.3)

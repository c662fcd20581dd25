"""Build limits on the real engine, with the builder's own build_image (classic builder, local base images):

- stop latency: from asking a build to stop (as a cancel or a timeout does) to its silent step's container being
  gone; a cancel through the API adds at most PORTSIDE_BUILD_CANCEL_POLL_SECONDS (1 s) on top;
- OOM: how long a step that touches 600 MB takes to be killed under a 256 MB cap, and the slowest engine ping
  meanwhile (the host stays responsive).

Writes bench/results/build_limits.json."""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
import uuid

import docker

from shared.docker.build import BuildLimits, BuildLine, build_context, build_image
from shared.docker.containers import list_containers
from tests.support import ROOT

RESULTS = ROOT / "bench" / "results" / "build_limits.json"
LABEL = "org.portside.bench"
RUNS = 3


def _build(engine: docker.DockerClient, dockerfile: str, **kwargs) -> tuple[list[BuildLine], object]:  # type: ignore[no-untyped-def]
    lines: list[BuildLine] = []
    outcome = build_image(
        engine, context=build_context(str(ROOT / "bench"), "Dockerfile.limits", dockerfile, ["**"]),
        dockerfile="Dockerfile.limits", tag=f"portside-bench/limits:{uuid.uuid4().hex[:8]}",
        labels={LABEL: "limits"}, on_line=lines.append, **kwargs,
    )
    return lines, outcome


def stop_latency(engine: docker.DockerClient) -> float:
    asked: list[float] = []
    step: list[str] = []

    def should_stop() -> bool:
        if not asked and step:
            asked.append(time.monotonic())
        return bool(asked)

    def on_line(line: BuildLine) -> None:
        found = re.search(r"Running in ([0-9a-f]{12})", line.text)
        if found:
            step.append(found[1])

    dockerfile = f"FROM debian:bookworm-slim\nRUN echo {uuid.uuid4().hex} && sleep 600\n"
    build_image(
        engine, context=build_context(str(ROOT / "bench"), "Dockerfile.limits", dockerfile, ["**"]),
        dockerfile="Dockerfile.limits", tag=f"portside-bench/limits:{uuid.uuid4().hex[:8]}",
        labels={LABEL: "limits"}, on_line=on_line, should_stop=should_stop,
    )
    while list_containers(engine, {"id": step[0]}):
        time.sleep(0.05)
    return time.monotonic() - asked[0]


def oom(engine: docker.DockerClient) -> tuple[float, float, bool]:
    pings: list[float] = []
    done = threading.Event()

    def probe() -> None:
        while not done.is_set():
            started = time.monotonic()
            engine.ping()
            pings.append(time.monotonic() - started)
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    dockerfile = (f"FROM python:3.12-slim\nRUN echo {uuid.uuid4().hex} && "
                  'python3 -c "b = bytearray(600 * 1024 * 1024)"\n')
    started = time.monotonic()
    _, outcome = _build(engine, dockerfile, limits=BuildLimits(memory=256 * 1024**2))
    took = time.monotonic() - started
    done.set()
    prober.join(5)
    return took, max(pings), bool(getattr(outcome, "oom_killed", False))


def main() -> None:
    engine = docker.from_env(timeout=300)
    stops = [stop_latency(engine) for _ in range(RUNS)]
    ooms = [oom(engine) for _ in range(RUNS)]
    result = {
        "stop_to_container_gone_seconds": {"median": round(statistics.median(stops), 2), "max": round(max(stops), 2)},
        "oom_256mb_cap": {
            "build_seconds_median": round(statistics.median(o[0] for o in ooms), 2),
            "slowest_engine_ping_seconds": round(max(o[1] for o in ooms), 3),
            "oom_event_seen": all(o[2] for o in ooms),
        },
        "runs": RUNS,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Reading a container's live state from the engine while it goes away is an answer, not an error: the
status endpoint reads through container_stats, and a deployment being stopped is exactly this case."""

from __future__ import annotations

import threading

import docker

from shared.docker import LABEL_MANAGED
from shared.docker.containers import container_stats


def test_stats_of_a_container_removed_mid_read_are_left_out_not_raised(engine: docker.DockerClient) -> None:
    container = engine.containers.run("python:3.12-slim", ["sleep", "300"], detach=True,
                                      labels={LABEL_MANAGED: "true", "org.portside.test": "engine-reads"})
    try:
        # The engine samples usage over about a second; removing the container meanwhile makes it answer an
        # empty body, which the SDK turns into a JSON error.
        remover = threading.Timer(0.3, lambda: container.remove(force=True))
        remover.start()
        during = container_stats(container)
        remover.join()
        assert during.cpu_percent is None and during.memory_mb is None
        after = container_stats(container)  # gone entirely by now
        assert after.state == "removed" and after.uptime_seconds is None
    finally:
        for leftover in engine.containers.list(all=True, filters={"label": "org.portside.test=engine-reads"}):
            leftover.remove(force=True)

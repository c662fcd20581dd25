"""Reading a container's live state from the engine while it goes away is an answer, not an error: the
status endpoint reads through container_stats, and a deployment being stopped is exactly this case."""

from __future__ import annotations

import threading
import time
import uuid

import docker

from services.runner.readiness import loopback_note
from shared.docker import LABEL_MANAGED
from shared.docker.client import Owner
from shared.docker.containers import container_stats, list_containers, remove_deployment_resources


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
        for leftover in list_containers(engine, {"label": "org.portside.test=engine-reads"}):
            leftover.remove(force=True)


def test_listing_while_a_container_is_removed_leaves_it_out(engine: docker.DockerClient) -> None:
    # The engine lists, then each container is inspected; a Swarm task replaced or a stack coming down in between
    # used to raise NotFound out of the reconciler, a stop and the status answer.
    label = {"label": "org.portside.test=engine-reads"}
    first, second = (engine.containers.create("python:3.12-slim", ["sleep", "300"],
                                              labels={LABEL_MANAGED: "true", "org.portside.test": "engine-reads"})
                     for _ in range(2))
    inspect = engine.api.inspect_container
    removed: list[str] = []

    def remove_the_other_first(container_id: str) -> dict:
        if not removed:  # as if another process removed the other container right after the engine listed it
            other = second if container_id.startswith(first.id) else first
            other.remove(force=True)
            removed.append(other.id)
        return inspect(container_id)

    engine.api.inspect_container = remove_the_other_first  # type: ignore[method-assign]
    try:
        found = list_containers(engine, label)
    finally:
        del engine.api.inspect_container
        for leftover in list_containers(engine, label):
            leftover.remove(force=True)
    assert [c.id for c in found] == [c.id for c in (first, second) if c.id not in removed]

def test_clean_ups_removing_the_same_deployment_at_once_all_succeed(engine: docker.DockerClient) -> None:
    # A stop's clean-up beside Swarm's agent (or the reconciler) removing the same containers: the engine answers
    # the second remover 409 "removal ... already in progress", which is what that remover wanted.
    owner = Owner(f"engine-reads-{uuid.uuid4().hex[:8]}", 1)
    for _ in range(3):
        engine.containers.run("python:3.12-slim", ["sleep", "300"], detach=True,
                              labels={**owner.labels, "org.portside.test": "engine-reads"})
    errors: list[BaseException] = []

    def clean_up() -> None:
        try:
            remove_deployment_resources(engine, owner)
        except BaseException as exc:  # noqa: BLE001 - the test reports what any remover raised
            errors.append(exc)

    removers = [threading.Thread(target=clean_up) for _ in range(4)]
    for remover in removers:
        remover.start()
    for remover in removers:
        remover.join()
    assert errors == [] and list_containers(engine, owner.filters) == []

def test_an_app_listening_on_loopback_in_its_container_is_named_as_the_reason_it_never_answered(
    engine: docker.DockerClient,
) -> None:
    # As render-examples/fastify-hello-world binds `localhost` unless RENDER is set: the port is published, the
    # image's own HEALTHCHECK (127.0.0.1 inside) passes, and nothing outside gets an answer.
    script = ("import http.server as s, sys; "
              "s.HTTPServer((sys.argv[1], 8000), s.SimpleHTTPRequestHandler).serve_forever()")
    notes = {}
    for host in ("127.0.0.1", "0.0.0.0"):
        container = engine.containers.run("python:3.12-slim", ["python", "-c", script, host], detach=True,
                                          ports={"8000/tcp": ("127.0.0.1", None)},
                                          labels={LABEL_MANAGED: "true", "org.portside.test": "engine-reads"})
        try:
            container.reload()
            published = int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
            for _ in range(50):  # until the server listens (a second or two)
                if " 0A " in container.exec_run(["cat", "/proc/net/tcp"]).output.decode():
                    break
                time.sleep(0.2)
            notes[host] = loopback_note(container, published, None)
        finally:
            container.remove(force=True)
    assert "listens on 127.0.0.1:8000, inside its container only" in notes["127.0.0.1"]
    assert notes["0.0.0.0"] == ""

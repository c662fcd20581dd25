"""Which images a deployment needs before it builds: FROM and COPY --from images of the Dockerfile (never an
earlier stage, never scratch), and the images compose runs as they are."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import docker
import pytest

from shared.config import Settings
from shared.docker import docker_client
from shared.errors import ErrorCode, PortsideError
from shared.preflight import compose_images, needed_images, unavailable_images


@pytest.fixture
def silent_engine() -> Iterator[str]:
    """An address that accepts connections and never answers, as an engine too busy to reply does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"


def test_needed_images_are_every_from_and_copy_from_image_but_not_stages() -> None:
    dockerfile = (
        "ARG GO=1.22\n"
        "FROM golang:${GO}-alpine AS builder\n"
        "COPY --from=ghcr.io/astral-sh/uv:latest /uv /bin/uv\n"
        "FROM builder AS test\n"
        "FROM scratch\n"
        "COPY --from=builder /out /app\n"
        "COPY --from=0 /out /app2\n"
        "FROM node:20-slim\n"
    )
    assert needed_images(dockerfile) == ["golang:1.22-alpine", "node:20-slim", "ghcr.io/astral-sh/uv:latest"]


def test_compose_images_are_the_services_without_a_build() -> None:
    compose = (
        "services:\n"
        "  app:\n    build: {context: ..}\n    image: portside/app:1\n"
        "  db:\n    image: postgres:16\n"
        "  cache:\n    image: redis:7\n"
    )
    assert compose_images(compose) == ["postgres:16", "redis:7"]
    assert compose_images("not: [valid") == []


def test_an_engine_that_does_not_answer_in_time_is_docker_unavailable_not_a_raw_timeout(silent_engine: str) -> None:
    with pytest.raises(PortsideError) as caught:
        docker_client(Settings(docker_host=silent_engine), timeout=1)
    assert caught.value.code == ErrorCode.DOCKER_UNAVAILABLE and silent_engine in caught.value.message
    # The image checks read a timeout (requests' own error, which the SDK does not wrap) as "not available".
    client = docker.DockerClient(base_url=silent_engine, version="1.41", timeout=1)
    try:
        assert unavailable_images(client, ["python:3.12-slim"]) == ["python:3.12-slim"]
    finally:
        client.close()

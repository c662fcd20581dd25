"""Which images a deployment needs before it builds: FROM and COPY --from images of the Dockerfile (never an
earlier stage, never scratch), and the images compose runs as they are."""

from __future__ import annotations

from shared.preflight import compose_images, needed_images


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

"""Generated Dockerfiles built by the real engine (classic builder, local base images), run, and asked over HTTP.

Each fixture whose dependencies can be fetched here (PyPI, npm, none) is built with the builder's own
build_image, started with the Docker SDK on a free loopback port, and must answer HTTP and turn healthy (the
HEALTHCHECK uses the runtime, not curl). Everything created carries a test label and is removed by tag/label."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from services.builder.dockerfile import render_dockerignore
from services.builder.generate import generate_files
from services.detector.service import detect
from shared.docker import Owner
from shared.docker.build import BuildLine, build_context, build_image
from shared.docker.containers import list_containers
from shared.docker.dockerfile import parse_dockerfile
from tests.conftest import copy_fixture
from tests.support import ROOT


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) as the one Dockerfile reader sees them."""
    return [(i.line, i.keyword, i.args) for i in parse_dockerfile(text).instructions]

LABEL = "org.portside.e2e-builds"
RUN_ID = uuid.uuid4().hex[:8]

# Quick ones (seconds to a minute on 2 cores); the rest are marked slow.
FAST = ["python-flask", "node-express", "static-html", "go-stdlib", "go-no-go-mod", "php-plain", "python-fastapi",
        "python-procfile-gunicorn-config", "monorepo-npm-workspaces-shared"]
SLOW = ["node-vite-react", "python-uv-fastapi", "python-pipenv-flask", "python-poetry-fastapi", "node-express-yarn",
        "node-pnpm-fastify", "node-koa", "python-aiohttp", "static-public-dir", "node-next", "python-fasthtml-writes",
        "node-vite-root-src", "python-conda-flask", "python-flask-old-gunicorn", "python-fasthtml-database",
        "python-flask-psycopg2-source", "node-pnpm-old-lockfile", "node-host-platform-switch",
        "monorepo-npm-workspaces-built-package",
        "node-bun-types-no-lockfile"]
# Fixtures that are deliberately not built here, each with the reason. The generated Dockerfile may well be right;
# the registry its dependencies come from is not reachable from these machines.
NOT_BUILDABLE_HERE = {
    "go-chi-env-port": "requires external Go modules (go-chi/chi, jackc/pgx); the Go module proxy is unreachable here",
}


def _base_images(dockerfile: str) -> list[str]:
    stages: set[str] = set()
    images = []
    for _, word, args in dockerfile_instructions(dockerfile):
        if word != "FROM":
            continue
        parts = [p for p in args.split() if not p.startswith("--")]
        if parts[0].lower() not in stages:
            images.append(parts[0])
        if len(parts) >= 3:
            stages.add(parts[2].lower())
    return images


def _ensure_images(engine: docker.DockerClient, images: list[str]) -> list[str]:
    """Build missing stand-ins where `make images` has a recipe; returns what is still missing."""
    missing = [i for i in images if not engine.images.list(name=i)]
    if missing:
        known = subprocess.run(["bash", str(ROOT / "deploy/base-images/build.sh"), "--list"], capture_output=True,
                               text=True, check=False).stdout.split()
        wanted = [i for i in missing if i in known]
        if wanted:
            subprocess.run(["bash", str(ROOT / "deploy/base-images/build.sh"), *wanted], check=False)
    return [i for i in images if not engine.images.list(name=i)]


@pytest.fixture
def cleanup(engine: docker.DockerClient) -> Iterator[list[str]]:
    tags: list[str] = []
    yield tags
    for container in list_containers(engine, {"label": f"{LABEL}={RUN_ID}"}):
        container.remove(force=True)
    for tag in tags:
        try:
            engine.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    # Intermediate images of failed builds are untagged; only those carrying our label are removed.
    for image in engine.images.list(filters={"label": f"{LABEL}={RUN_ID}", "dangling": True}):
        try:
            engine.images.remove(image.id)
        except docker.errors.APIError:
            pass


def build_and_serve(engine: docker.DockerClient, fixture: str, tmp_path: Path, tags: list[str]) -> None:
    source = copy_fixture(fixture, tmp_path)
    files = generate_files(detect(source), source, owner=Owner("e2e", 1), repo_name=fixture)
    missing = _ensure_images(engine, _base_images(files.dockerfile))
    if missing:
        pytest.skip(f"base images not available here: {missing}")
    tag = f"portside-e2e/{fixture}:{RUN_ID}"
    tags.append(tag)
    lines: list[str] = []
    ignore = [ln for ln in render_dockerignore(source).splitlines() if ln and not ln.startswith("#")]
    outcome = build_image(
        engine, context=build_context(str(source), ".deployment/Dockerfile", files.dockerfile, ignore),
        dockerfile=".deployment/Dockerfile", tag=tag, labels={LABEL: RUN_ID},
        on_line=lambda line: lines.append(line.text),
    )
    assert outcome.succeeded, f"{fixture}: {outcome.error} at {outcome.failing_step}\n" + "\n".join(lines[-25:])
    assert any(line.startswith("Step 1/") for line in lines)

    image = engine.images.get(tag)
    assert image.attrs["Config"].get("User") not in (None, "", "root", "0"), "the image must run as a non-root user"
    port = files.port
    container = engine.containers.run(
        tag, detach=True, labels={LABEL: RUN_ID}, ports={f"{port}/tcp": ("127.0.0.1", None)},
    )
    container.reload()
    host_port = int(container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"])
    deadline = time.monotonic() + 60
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"http://127.0.0.1:{host_port}/", timeout=3)
            break
        except httpx.HTTPError:
            container.reload()
            if container.status == "exited":
                break
            time.sleep(0.5)
    logs = container.logs(tail=30).decode(errors="replace")
    assert answer is not None, f"{fixture} did not answer HTTP on {port}:\n{logs}"
    assert answer.status_code < 500, f"{fixture}: HTTP {answer.status_code}\n{logs}"
    # The HEALTHCHECK needs no curl: the engine itself must see the app healthy.
    health = None
    while time.monotonic() < deadline + 30:
        container.reload()
        health = container.attrs["State"].get("Health", {}).get("Status")
        if health in ("healthy", "unhealthy"):
            break
        time.sleep(1)
    assert health == "healthy", f"{fixture}: health is {health}: {container.attrs['State'].get('Health')}"


@pytest.mark.parametrize("fixture", FAST)
def test_generated_image_builds_runs_and_answers_http(
    engine: docker.DockerClient, tmp_path: Path, cleanup: list[str], fixture: str,
) -> None:
    build_and_serve(engine, fixture, tmp_path, cleanup)


@pytest.mark.slow
@pytest.mark.parametrize("fixture", SLOW)
def test_generated_image_builds_runs_and_answers_http_slow(
    engine: docker.DockerClient, tmp_path: Path, cleanup: list[str], fixture: str,
) -> None:
    build_and_serve(engine, fixture, tmp_path, cleanup)


def test_build_exclusions_are_explicit_and_still_true() -> None:
    assert not NOT_BUILDABLE_HERE.keys() & {*FAST, *SLOW}
    for fixture in NOT_BUILDABLE_HERE:
        repo = ROOT / "tests" / "fixtures" / "repos" / fixture
        assert repo.is_dir(), fixture
        go_mod = repo / "go.mod"
        # A Go fixture with vendored modules, or none, builds here: then it belongs in SLOW again.
        if go_mod.exists():
            assert "require" in go_mod.read_text() and not (repo / "vendor").exists(), fixture


def test_build_stops_at_the_next_line_when_asked(engine: docker.DockerClient, cleanup: list[str]) -> None:
    tag = f"portside-e2e/cancel:{RUN_ID}"
    cleanup.append(tag)
    dockerfile = 'FROM debian:bookworm-slim\nRUN echo one && sleep 1 && echo two && sleep 60 && echo three\n'
    seen: list[BuildLine] = []
    started = time.monotonic()
    outcome = build_image(
        engine, context=build_context(str(ROOT / "tests" / "e2e"), "Dockerfile.cancel", dockerfile, ["**"]),
        dockerfile="Dockerfile.cancel", tag=tag, labels={LABEL: RUN_ID}, on_line=seen.append,
        should_stop=lambda: any(line.text == "two" for line in seen),
    )
    assert not outcome.succeeded and outcome.error == "build cancelled"
    assert time.monotonic() - started < 30
    assert not engine.images.list(name=tag)

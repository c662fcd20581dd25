"""API business logic: repositories, deployments, and the commands that move them along."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from uuid import uuid4

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.bus import Bus
from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.db.repository import record_event, transition
from shared.db.status import PORT_HOLDING, allowed_sources
from shared.db.status import DeploymentStatus as S
from shared.detection import Detection
from shared.docker.validate import check_compose, check_dockerfile
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import (
    BuildRequested,
    DeleteRequested,
    DetectCompleted,
    DetectFailed,
    DetectRequested,
    Failure,
    GenerateRequested,
    RunRequested,
    StopRequested,
)
from shared.messaging.subjects import Subject
from shared.preflight import preflight


def _repo_name(source: str) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name) or "repo"


def _clone(url: str, branch: str | None, dest: Path) -> None:
    cmd = ["git", "clone", "--depth", "1"]
    if branch:
        cmd += ["--branch", branch]
    cmd += ["--", url, str(dest)]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PortsideError(ErrorCode.GIT_CLONE_FAILED, f"Cloning {url} took more than 300 s.") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise PortsideError(ErrorCode.GIT_CLONE_FAILED, f"git could not clone {url}: {last}. Check the URL and branch.")


async def register_repository(
    session: AsyncSession, settings: Settings, *, path: str | None, url: str | None, branch: str | None, name: str | None
) -> Repository:
    if path:
        root = Path(path)
        if not root.is_absolute():
            raise PortsideError(ErrorCode.INVALID_REPOSITORY, f"`{path}` is not an absolute path; give the full path of the directory.")
        if not root.is_dir():
            raise PortsideError(ErrorCode.REPO_NOT_FOUND, f"{path} does not exist or is not a directory.")
        root = root.resolve()
        existing = await session.scalar(select(Repository).where(Repository.path == str(root)))
        if existing is not None:
            return existing
        repo = Repository(name=name or _repo_name(str(root)), path=str(root))
    else:
        assert url
        repo_name = name or _repo_name(url)
        dest = settings.repos_dir / f"{repo_name}-{uuid4().hex[:8]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(_clone, url, branch, dest)
        repo = Repository(name=repo_name, path=str(dest), url=url, branch=branch)
    session.add(repo)
    await session.commit()
    return repo


async def get_repository(session: AsyncSession, repo_id: int) -> Repository:
    repo = await session.get(Repository, repo_id)
    if repo is None:
        raise PortsideError(ErrorCode.REPOSITORY_NOT_FOUND, f"Repository {repo_id} does not exist; list them with GET /api/repositories.")
    return repo


async def get_deployment(session: AsyncSession, deployment_id: int) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise PortsideError(ErrorCode.DEPLOYMENT_NOT_FOUND, f"Deployment {deployment_id} does not exist; list them with GET /api/deployments.")
    return deployment


def _check_app_path(repo: Repository, app_path: str) -> str:
    app_path = app_path.strip("/")
    root = Path(repo.path).resolve()
    target = (root / app_path).resolve()
    if not target.is_relative_to(root):
        raise PortsideError(ErrorCode.INVALID_REPOSITORY, f"app_path `{app_path}` leaves the repository.")
    if not target.is_dir():
        raise PortsideError(ErrorCode.REPO_NOT_FOUND, f"{target} is not a directory; check app_path.")
    return app_path


def _raise_failure(event: Failure) -> None:
    raise PortsideError(ErrorCode(event.error_code) if event.error_code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR, event.message)


async def detect(session: AsyncSession, bus: Bus, repo_id: int, app_path: str) -> Detection:
    repo = await get_repository(session, repo_id)
    app_path = _check_app_path(repo, app_path)
    _, event = await bus.request(
        Subject.DETECT_REQUESTED, DetectRequested(repository_id=repo.id, app_path=app_path),
        answers=(Subject.DETECT_COMPLETED, Subject.DETECT_FAILED),
    )
    if isinstance(event, DetectFailed):
        _raise_failure(event)
    assert isinstance(event, DetectCompleted)
    return event.detection


async def generate(
    session: AsyncSession, bus: Bus, settings: Settings, repo_id: int, *,
    app_path: str, stack: str | None, port: int | None, host_port: int | None,
    cpu_limit: float | None = None, memory_limit: str | None = None, use_repo_dockerfile: bool = True,
) -> Deployment:
    repo = await get_repository(session, repo_id)
    app_path = _check_app_path(repo, app_path)
    if host_port is not None and not settings.port_range_start <= host_port <= settings.port_range_end:
        raise PortsideError(ErrorCode.PORT_OUT_OF_RANGE, f"Host port {host_port} is outside {settings.port_range_start}-{settings.port_range_end}.")
    if app_path not in (repo.detection or {}):
        await detect(session, bus, repo_id, app_path)
    deployment = Deployment(
        repository_id=repo.id, repo_name=repo.name, app_path=app_path, stack=stack,
        internal_port=port, requested_port=host_port, cpu_limit=cpu_limit, memory_limit=memory_limit,
        status=S.GENERATING.value,
    )
    session.add(deployment)
    await session.flush()
    await record_event(session, deployment.id, S.GENERATING, "generating files")
    await session.commit()
    _, event = await bus.request(
        Subject.GENERATE_REQUESTED, GenerateRequested(deployment_id=deployment.id, use_repo_dockerfile=use_repo_dockerfile),
        answers=(Subject.GENERATE_COMPLETED, Subject.GENERATE_FAILED),
    )
    if isinstance(event, Failure):
        _raise_failure(event)
    await session.refresh(deployment)
    return deployment


async def save_files(
    session: AsyncSession, settings: Settings, deployment_id: int, dockerfile: str | None, compose: str | None,
) -> list[str]:
    """Validate (syntax, hadolint, security policy, `docker compose config`) and save. A refusal is a 422 with the
    offending line; hadolint warnings are kept on the event and returned."""
    deployment = await get_deployment(session, deployment_id)
    if dockerfile is None and compose is None:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, "Give `dockerfile`, `compose` or both.")
    repo = await get_repository(session, deployment.repository_id)
    app_dir = (Path(repo.path) / deployment.app_path).resolve()
    compose_files = list(deployment.compose_files or [".deployment/docker-compose.yml"])
    theirs = [f for f in compose_files if f != ".deployment/docker-compose.yml"]

    def check() -> list[str]:
        found: list[str] = []
        if dockerfile is not None:
            found = check_dockerfile(dockerfile, settings.allowed_registries)
        if compose is not None:
            check_compose(settings, compose, app_service=deployment.app_service or "app", app_dir=app_dir, before=theirs)
        return found

    warnings = await anyio.to_thread.run_sync(check)
    if dockerfile is not None:
        deployment.dockerfile_content = dockerfile
    if compose is not None:
        deployment.compose_content = compose
    if deployment.docker_path:
        target = Path(deployment.docker_path)

        def write() -> None:
            target.mkdir(parents=True, exist_ok=True)
            if dockerfile is not None:
                (target / "Dockerfile").write_text(dockerfile)
            if compose is not None:
                (target / "docker-compose.yml").write_text(compose)

        await anyio.to_thread.run_sync(write)
    message = "files edited by the user" + ("; hadolint warnings: " + "; ".join(warnings) if warnings else "")
    await record_event(session, deployment.id, deployment.status, message)
    await session.commit()
    return warnings


async def deploy(session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False) -> Deployment:
    """Queue a build (the runner starts it when the build completes). With `wait`, answer once it runs or fails."""
    deployment = await get_deployment(session, deployment_id)
    if not deployment.dockerfile_content:
        raise PortsideError(ErrorCode.INVALID_STATE, "This deployment has no Dockerfile yet; generate it first.")
    if S(deployment.status) not in allowed_sources(S.QUEUED):
        raise PortsideError(ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {deployment.status}; wait until it finishes or stop it first.")
    await _preflight_or_error(session, bus.settings, deployment, dockerfile=deployment.dockerfile_content,
                              compose=deployment.compose_content)
    result = await transition(session, deployment_id, S.QUEUED, "deploy requested")
    if not result.applied:
        raise PortsideError(ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {result.current}; wait until it finishes or stop it first.")
    await session.commit()
    command = BuildRequested(deployment_id=deployment_id)
    if wait:
        settings = bus.settings
        await bus.request(
            Subject.BUILD_REQUESTED, command,
            answers=(Subject.RUN_COMPLETED, Subject.RUN_FAILED, Subject.BUILD_FAILED),
            timeout=settings.build_timeout_seconds + settings.ready_timeout_seconds + 60,
        )
    else:
        await bus.send(Subject.BUILD_REQUESTED, command)
    await session.refresh(deployment)
    return deployment


async def _preflight_or_error(
    session: AsyncSession, settings: Settings, deployment: Deployment, dockerfile: str | None = None,
    compose: str | None = None,
) -> None:
    """Engine, disk, repository, port and (before a build) base-image checks; a failure leaves the deployment in
    `error` with the code."""
    repo = await get_repository(session, deployment.repository_id)
    holds_port = deployment.assigned_port == deployment.requested_port and S(deployment.status) in PORT_HOLDING
    requested = None if holds_port else deployment.requested_port
    try:
        await anyio.to_thread.run_sync(preflight, settings, Path(repo.path) / deployment.app_path, requested,
                                       dockerfile, repo.id, compose)
    except PortsideError as exc:
        await transition(session, deployment.id, S.ERROR, exc.message, error_code=exc.code)
        await session.commit()
        raise


async def rollback(session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False) -> Deployment:
    """Start the previous successful image again, without a build."""
    deployment = await get_deployment(session, deployment_id)
    if not deployment.previous_image_tag:
        raise PortsideError(ErrorCode.NO_PREVIOUS_IMAGE, f"Deployment {deployment_id} has no earlier successful image to go back to.")
    if S(deployment.status) not in allowed_sources(S.QUEUED):
        raise PortsideError(ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {deployment.status}; wait until it finishes.")
    await _preflight_or_error(session, bus.settings, deployment)
    result = await transition(session, deployment_id, S.QUEUED, f"rollback to {deployment.previous_image_tag} requested")
    if not result.applied:
        raise PortsideError(ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {result.current}; wait until it finishes.")
    await session.commit()
    command = RunRequested(deployment_id=deployment_id, image_tag=deployment.previous_image_tag)
    if wait:
        await bus.request(Subject.RUN_REQUESTED, command, answers=(Subject.RUN_COMPLETED, Subject.RUN_FAILED),
                          timeout=bus.settings.ready_timeout_seconds + 120)
    else:
        await bus.send(Subject.RUN_REQUESTED, command)
    await session.refresh(deployment)
    return deployment


async def delete(session: AsyncSession, bus: Bus, deployment_id: int, purge: bool) -> None:
    """Stop what runs, remove containers, network and images (volumes too with `purge`), then the row."""
    await get_deployment(session, deployment_id)
    await session.close()  # the runner deletes the row; do not hold it open meanwhile
    await bus.request(Subject.DELETE_REQUESTED, DeleteRequested(deployment_id=deployment_id, purge=purge),
                      answers=(Subject.DELETE_COMPLETED,), timeout=180)


async def stop(session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False) -> Deployment:
    deployment = await get_deployment(session, deployment_id)
    if S(deployment.status) not in allowed_sources(S.STOPPING):
        return deployment  # nothing runs: stopping is a no-op, not an error
    command = StopRequested(deployment_id=deployment_id)
    if wait:
        await bus.request(Subject.STOP_REQUESTED, command, answers=(Subject.STOP_COMPLETED,), timeout=120)
    else:
        await bus.send(Subject.STOP_REQUESTED, command)
    await session.refresh(deployment)
    return deployment

"""API business logic: repositories, deployments, and the commands that move them along."""

from __future__ import annotations

import base64
import os
import re
import shutil
from functools import partial
from pathlib import Path
from uuid import uuid4

import anyio
from sqlalchemy import delete as sa_delete
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import can_see
from services.api.bus import Bus
from services.api.registration import GIT_SCHEMES, check_local_path, clone, head_commit, pull
from shared.config import Settings
from shared.db.models import Deployment, EnvVar, Release, Repository, User
from shared.db.repository import load_detection, record_event, transition
from shared.db.status import PORT_HOLDING, RESTING, allowed_sources
from shared.db.status import DeploymentStatus as S
from shared.detection import Detection
from shared.docker import Owner, docker_client
from shared.docker.resolved import PORTSIDE_COMPOSE
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
from shared.messaging.outbox import stage
from shared.messaging.public import DeploymentStatusChanged, RepositoryRegistered
from shared.messaging.subjects import PublicSubject, Subject
from shared.net import os_port_free
from shared.outbound import check_url
from shared.preflight import preflight
from shared.source import SourceTree


def _repo_name(source: str) -> str:
    """One safe path segment: letters, digits, `.`, `_`, `-`, never starting with a dot."""
    name = source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).lstrip(".-")[:80] or "repo"


async def register_repository(
    session: AsyncSession,
    settings: Settings,
    *,
    path: str | None,
    url: str | None,
    branch: str | None,
    name: str | None,
    owner_id: int | None = None,
) -> Repository:
    if path:
        root = check_local_path(path, settings)
        existing = await session.scalar(select(Repository).where(Repository.path == str(root)))
        if existing is not None:
            return existing
        repo = Repository(name=_repo_name(name or str(root)), path=str(root), owner_id=owner_id,
                          commit_sha=await anyio.to_thread.run_sync(head_commit, root))
    else:
        assert url
        target = check_url(url, schemes=GIT_SCHEMES, allow_private=settings.allow_private_networks,
                           allow_file=settings.allow_local_repos, what="git URL")
        if target.scheme == "file":
            check_local_path(target.url.removeprefix("file://"), settings)
        repo_name = _repo_name(name or target.url)
        dest = settings.repos_dir / f"{repo_name}-{uuid4().hex[:8]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(clone, target, branch, dest, settings)
        # Only the URL without credentials is kept: they served this clone and are gone.
        repo = Repository(name=repo_name, path=str(dest), url=target.url, branch=branch, owner_id=owner_id,
                          commit_sha=await anyio.to_thread.run_sync(head_commit, dest))
    session.add(repo)
    await session.flush()
    await stage(session, PublicSubject.REPOSITORY_REGISTERED, RepositoryRegistered(
        repository_id=repo.id, name=repo.name, url=repo.url, branch=repo.branch))
    await session.commit()
    return repo


async def get_repository(session: AsyncSession, repo_id: int, user: User | None = None) -> Repository:
    """The repository, if `user` (when given) may see it; another member's id answers like a missing one."""
    repo = await session.get(Repository, repo_id)
    if repo is None or (user is not None and not can_see(user, repo.owner_id)):
        raise PortsideError(
            ErrorCode.REPOSITORY_NOT_FOUND,
            f"Repository {repo_id} does not exist; list them with GET /api/repositories.",
        )
    return repo


def _clone_dir(settings: Settings, repo: Repository) -> Path | None:
    """The folder Portside cloned this repository into, or None for a registered local directory (never ours
    to change or remove)."""
    if not repo.url:
        return None
    folder = Path(os.path.realpath(repo.path))
    repos_dir = Path(os.path.realpath(settings.repos_dir))
    return folder if folder.parent == repos_dir else None


async def _busy_deployments(session: AsyncSession, repo_id: int) -> list[Deployment]:
    """The repository's deployments that are being built, started, run or stopped."""
    deployments = (await session.scalars(
        select(Deployment).where(Deployment.repository_id == repo_id).order_by(Deployment.id)
    )).all()
    return [d for d in deployments if S(d.status) not in RESTING]


def _describe(deployments: list[Deployment]) -> str:
    return ", ".join(f"{d.id} ({d.status})" for d in deployments)


async def pull_repository(
    session: AsyncSession, settings: Settings, repo_id: int, user: User | None = None
) -> Repository:
    """Fetch the newest commit of a cloned repository's branch and check it out (same git environment and limits
    as the clone). A registered local directory has nothing to pull: it is answered as it is."""
    repo = await get_repository(session, repo_id, user)
    folder = _clone_dir(settings, repo)
    if folder is None or repo.url is None:
        return repo
    building = [d for d in await _busy_deployments(session, repo.id) if S(d.status) in (S.QUEUED, S.BUILDING)]
    if building:
        raise PortsideError(
            ErrorCode.INVALID_STATE,
            f"Repository {repo_id} is being built by deployment {_describe(building)}; pull once the build ends.",
        )
    target = check_url(repo.url, schemes=GIT_SCHEMES, allow_private=settings.allow_private_networks,
                       allow_file=settings.allow_local_repos, what="git URL")
    if target.scheme == "file":
        check_local_path(target.url.removeprefix("file://"), settings)
    await anyio.to_thread.run_sync(pull, target, repo.branch, folder, settings)
    # Workers without this clone on their disk fetch exactly this commit (shared/checkout.py).
    repo.commit_sha = await anyio.to_thread.run_sync(head_commit, folder)
    await session.commit()
    return repo


async def delete_repository(
    session: AsyncSession, bus: Bus, settings: Settings, repo_id: int, user: User | None = None
) -> None:
    """Refused (INVALID_STATE) while a deployment of the repository is busy or running. Otherwise each of its
    deployments is deleted by the runner (containers, network, images and volumes), then the row, then the clone
    folder under PORTSIDE_HOME/repos. A registered local directory is never removed."""
    repo = await get_repository(session, repo_id, user)
    # Its previews (pull request checkouts) go with it; the database's cascade alone would orphan their containers.
    previews = list((await session.scalars(select(Repository).where(Repository.preview_of == repo.id))).all())
    busy = [d for r in (repo, *previews) for d in await _busy_deployments(session, r.id)]
    if busy:
        raise PortsideError(
            ErrorCode.INVALID_STATE,
            f"Repository {repo_id} has deployments that are not stopped: {_describe(busy)}; stop them first "
            "(POST /api/deployments/{id}/stop), then delete the repository.",
        )
    folder = _clone_dir(settings, repo)
    folders = [f for f in (_clone_dir(settings, p) for p in previews) if f is not None]
    deployment_ids = list((await session.scalars(
        select(Deployment.id).where(Deployment.repository_id.in_([repo.id, *(p.id for p in previews)]))
        .order_by(Deployment.id)
    )).all())
    await session.commit()  # the runner deletes the deployment rows; do not hold them open meanwhile
    for deployment_id in deployment_ids:
        _, event = await bus.request(
            Subject.DELETE_REQUESTED, DeleteRequested(deployment_id=deployment_id, purge=True),
            answers=(Subject.DELETE_COMPLETED, Subject.DELETE_FAILED), timeout=180,
        )
        if isinstance(event, Failure):
            _raise_failure(event)
    repo = await get_repository(session, repo_id)
    busy = await _busy_deployments(session, repo.id)
    if busy:  # a deploy slipped in meanwhile
        raise PortsideError(
            ErrorCode.INVALID_STATE,
            f"Repository {repo_id} was deployed meanwhile ({_describe(busy)}); stop it first, then delete again.",
        )
    await session.delete(repo)
    await session.commit()
    for gone in [*folders, *([folder] if folder is not None else [])]:
        await anyio.to_thread.run_sync(partial(shutil.rmtree, gone, ignore_errors=True))


async def get_deployment(session: AsyncSession, deployment_id: int, user: User | None = None) -> Deployment:
    """The deployment, if `user` (when given) may see it; another member's id answers like a missing one."""
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None or (user is not None and not can_see(user, deployment.owner_id)):
        raise PortsideError(
            ErrorCode.DEPLOYMENT_NOT_FOUND,
            f"Deployment {deployment_id} does not exist; list them with GET /api/deployments.",
        )
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
    raise PortsideError(
        ErrorCode(event.error_code) if event.error_code in ErrorCode.__members__ else ErrorCode.INTERNAL_ERROR,
        event.message,
    )


async def detect(session: AsyncSession, bus: Bus, repo_id: int, app_path: str, user: User | None = None) -> Detection:
    repo = await get_repository(session, repo_id, user)
    app_path = _check_app_path(repo, app_path)
    _, event = await bus.request(
        Subject.DETECT_REQUESTED, DetectRequested(repository_id=repo.id, app_path=app_path),
        answers=(Subject.DETECT_COMPLETED, Subject.DETECT_FAILED),
    )
    if isinstance(event, DetectFailed):
        _raise_failure(event)
    assert isinstance(event, DetectCompleted)
    return event.detection


async def _check_host_port(session: AsyncSession, settings: Settings, port: int) -> None:
    """Refuse a host port that can't be had now. The runner's claim at deploy time (a unique index) stays the
    judge; this answers the common case at once instead of after a build."""
    if not settings.port_range_start <= port <= settings.port_range_end:
        raise PortsideError(
            ErrorCode.PORT_OUT_OF_RANGE,
            f"Port {port} is outside Portside's range {settings.port_range_start}-{settings.port_range_end}; "
            "choose a port inside it or change PORTSIDE_PORT_RANGE_START/END.",
        )
    holder = await session.scalar(
        select(Deployment.id).where(
            Deployment.assigned_port == port, Deployment.status.in_([s.value for s in PORT_HOLDING])
        )
    )
    if holder is not None or not await anyio.to_thread.run_sync(os_port_free, settings.bind_address, port):
        who = f"deployment {holder}" if holder is not None else "another process on this machine"
        raise PortsideError(
            ErrorCode.PORT_IN_USE,
            f"Port {port} is already in use by {who}; choose another port or leave it empty to get a free one.",
        )


async def generate(
    session: AsyncSession, bus: Bus, settings: Settings, repo_id: int, *,
    app_path: str, stack: str | None, port: int | None, internal_port: int | None,
    cpu_limit: float | None = None, memory_limit: str | None = None, user: User | None = None,
    use_repo_dockerfile: bool = True,
) -> Deployment:
    """`port` is the host port to publish on (None: a free one at deploy time), `internal_port` the port the
    app listens on in the container (None: the detected one)."""
    repo = await get_repository(session, repo_id, user)
    app_path = _check_app_path(repo, app_path)
    if port is not None:
        await _check_host_port(session, settings, port)
    if await load_detection(session, repo.id, app_path) is None:
        await detect(session, bus, repo_id, app_path, user)
    deployment = Deployment(
        owner_id=repo.owner_id if repo.owner_id is not None else (user.id if user else None),
        repository_id=repo.id, repo_name=repo.name, app_path=app_path, stack=stack,
        internal_port=internal_port, requested_port=port, cpu_limit=cpu_limit, memory_limit=memory_limit,
        status=S.GENERATING.value,
    )
    session.add(deployment)
    await session.flush()
    await record_event(session, deployment.id, S.GENERATING, "generating files")
    await stage(session, PublicSubject.DEPLOYMENT_STATUS_CHANGED, DeploymentStatusChanged(
        deployment_id=deployment.id, previous_status=None, status=S.GENERATING.value, message="generating files"))
    await session.commit()
    _, event = await bus.request(
        Subject.GENERATE_REQUESTED,
        GenerateRequested(deployment_id=deployment.id, use_repo_dockerfile=use_repo_dockerfile),
        answers=(Subject.GENERATE_COMPLETED, Subject.GENERATE_FAILED),
    )
    if isinstance(event, Failure):
        _raise_failure(event)
    await session.refresh(deployment)
    return deployment


async def save_files(
    session: AsyncSession, settings: Settings, deployment_id: int, dockerfile: str | None, compose: str | None,
    user: User | None = None, dockerignore: str | None = None,
) -> list[str]:
    """Validate (syntax, hadolint, security policy, `docker compose config`) and save. A refusal is a 422 with the
    offending line; hadolint warnings are kept on the event and returned. A .dockerignore is saved as it is
    (it only narrows what the build sees)."""
    deployment = await get_deployment(session, deployment_id, user)
    if dockerfile is None and compose is None and dockerignore is None:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, "Give `dockerfile`, `compose`, `dockerignore` or some of them.")
    repo = await get_repository(session, deployment.repository_id)
    repo_root = Path(repo.path).resolve()
    app_dir = (repo_root / deployment.app_path).resolve()
    compose_files = list(deployment.compose_files or [PORTSIDE_COMPOSE])
    theirs = [f for f in compose_files if f != PORTSIDE_COMPOSE]

    def check() -> list[str]:
        found: list[str] = []
        if dockerfile is not None:
            found = check_dockerfile(dockerfile, settings.allowed_registries)
        if compose is not None:
            checked = check_compose(settings, compose, owner=Owner.of(settings, deployment.id), repo_root=repo_root,
                                    app_dir=app_dir, app_service=deployment.app_service or "app", before=theirs)
            found += checked.warnings
        return found

    warnings = await anyio.to_thread.run_sync(check)
    if dockerfile is not None:
        deployment.dockerfile_content = dockerfile
    if compose is not None:
        deployment.compose_content = compose
    if dockerignore is not None:
        deployment.dockerignore_content = dockerignore
    if deployment.docker_path:
        # The export on disk, written through the contained layer (never through a symlink or hard link).
        folder = os.path.relpath(Path(deployment.docker_path), repo_root)

        def write() -> None:
            tree = SourceTree(repo_root)
            try:
                if dockerfile is not None:
                    tree.write_text(f"{folder}/Dockerfile", dockerfile)
                if compose is not None:
                    tree.write_text(f"{folder}/docker-compose.yml", compose, mode=0o600)
                if dockerignore is not None:
                    tree.write_text(f"{folder}/.dockerignore", dockerignore)
            except (OSError, ValueError) as exc:
                raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                    f"{folder}/ is not a real folder inside the repository ({exc.__class__.__name__}); "
                                    "the edit was not saved. Remove the symlink from the repository.") from exc

        await anyio.to_thread.run_sync(write)
    message = "files edited by the user" + ("; hadolint warnings: " + "; ".join(warnings) if warnings else "")
    await record_event(session, deployment.id, deployment.status, message)
    await session.commit()
    return warnings


async def deploy(
    session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False, user: User | None = None
) -> Deployment:
    """Queue a build (the runner starts it when the build completes). With `wait`, answer once it runs or fails."""
    deployment = await get_deployment(session, deployment_id, user)
    if not deployment.dockerfile_content:
        raise PortsideError(ErrorCode.INVALID_STATE, "This deployment has no Dockerfile yet; generate it first.")
    if S(deployment.status) not in allowed_sources(S.QUEUED):
        raise PortsideError(
            ErrorCode.INVALID_STATE,
            f"Deployment {deployment_id} is {deployment.status}; wait until it finishes or stop it first.",
        )
    await _preflight_or_error(session, bus.settings, deployment, dockerfile=deployment.dockerfile_content,
                              compose=deployment.compose_content)
    result = await transition(session, deployment_id, S.QUEUED, "deploy requested")
    if not result.applied:
        raise PortsideError(
            ErrorCode.INVALID_STATE,
            f"Deployment {deployment_id} is {result.current}; wait until it finishes or stop it first.",
        )
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


async def cancel(session: AsyncSession, deployment_id: int, user: User | None = None) -> Deployment:
    """End a queued or running build now: the deployment is `build_failed` with BUILD_CANCELLED at once, and the
    builder holding it (any replica: it reads the status every PORTSIDE_BUILD_CANCEL_POLL_SECONDS) kills the
    step's container and frees its build slot."""
    deployment = await get_deployment(session, deployment_id, user)
    refused = PortsideError(
        ErrorCode.INVALID_STATE,
        f"Deployment {deployment_id} is {deployment.status}: only a queued or building deployment has a build to "
        "cancel (use stop for a running app).",
    )
    if S(deployment.status) not in (S.QUEUED, S.BUILDING):
        raise refused
    who = f"by {user.email}" if user is not None else "through the API"
    result = await transition(session, deployment_id, S.BUILD_FAILED, f"The build was cancelled {who}.",
                              error_code=ErrorCode.BUILD_CANCELLED)
    if not result.applied:  # it finished (or was stopped) between the read and the update
        await session.rollback()
        await session.refresh(deployment)
        raise refused
    await session.commit()
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


async def _rollback_target(session: AsyncSession, deployment: Deployment, release_id: int | None) -> Release | None:
    """The release to restore: the one asked for, or the newest one that ran the previous image (None for images
    from before releases were kept: then the image alone comes back)."""
    if release_id is not None:
        release = await session.get(Release, release_id)
        if release is None or release.deployment_id != deployment.id:
            raise PortsideError(ErrorCode.RELEASE_NOT_FOUND, f"Deployment {deployment.id} has no release {release_id}; "
                                                             "GET .../releases lists them.")
        return release
    if not deployment.previous_image_tag:
        return None
    return (await session.scalars(
        select(Release).where(Release.deployment_id == deployment.id,
                              Release.image_tag == deployment.previous_image_tag).order_by(Release.id.desc())
    )).first()


def _image_present(settings: Settings, tag: str) -> bool:
    client = docker_client(settings, timeout=30)
    try:
        return bool(client.images.list(name=tag))
    finally:
        client.close()


async def _restore(session: AsyncSession, deployment: Deployment, release: Release) -> None:
    """Put the release's configuration back: files, limits and variables (still encrypted, copied as stored)."""
    deployment.dockerfile_content = release.dockerfile_content
    deployment.compose_content = release.compose_content
    deployment.dockerignore_content = release.dockerignore_content
    deployment.cpu_limit = release.cpu_limit
    deployment.memory_limit = release.memory_limit
    await session.execute(sa_delete(EnvVar).where(EnvVar.deployment_id == deployment.id))
    session.add_all([
        EnvVar(deployment_id=deployment.id, key=v["key"], value_encrypted=base64.b64decode(v["value_encrypted"]),
               secret=bool(v.get("secret")), build=bool(v.get("build")))
        for v in release.env
    ])


async def rollback(
    session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False, user: User | None = None,
    release_id: int | None = None,
) -> Deployment:
    """Start an earlier successful image again, without a build, with the configuration it ran with (files,
    limits, variables): the previous one, or the release `release_id`."""
    deployment = await get_deployment(session, deployment_id, user)
    release = await _rollback_target(session, deployment, release_id)
    image = release.image_tag if release else deployment.previous_image_tag
    if not image:
        raise PortsideError(
            ErrorCode.NO_PREVIOUS_IMAGE, f"Deployment {deployment_id} has no earlier successful image to go back to."
        )
    if S(deployment.status) not in allowed_sources(S.QUEUED):
        raise PortsideError(
            ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {deployment.status}; wait until it finishes."
        )
    await _preflight_or_error(session, bus.settings, deployment)
    if release is not None and not await anyio.to_thread.run_sync(_image_present, bus.settings, image):
        raise PortsideError(ErrorCode.NO_PREVIOUS_IMAGE, f"The image {image} of release {release.id} was removed "
                                                         "(only the newest PORTSIDE_KEEP_IMAGES are kept); choose a "
                                                         "newer release.")
    result = await transition(
        session, deployment_id, S.QUEUED,
        f"rollback to {image} requested" + (f" with the configuration of release {release.id}" if release else ""),
    )
    if not result.applied:
        raise PortsideError(
            ErrorCode.INVALID_STATE, f"Deployment {deployment_id} is {result.current}; wait until it finishes."
        )
    if release is not None:
        await _restore(session, deployment, release)
    await session.commit()
    command = RunRequested(deployment_id=deployment_id, image_tag=image)
    if wait:
        await bus.request(Subject.RUN_REQUESTED, command, answers=(Subject.RUN_COMPLETED, Subject.RUN_FAILED),
                          timeout=bus.settings.ready_timeout_seconds + 120)
    else:
        await bus.send(Subject.RUN_REQUESTED, command)
    await session.refresh(deployment)
    return deployment


async def delete(session: AsyncSession, bus: Bus, deployment_id: int, purge: bool, user: User | None = None) -> None:
    """Stop what runs, remove containers, network and images (volumes too with `purge`), then the row."""
    await get_deployment(session, deployment_id, user)
    await session.close()  # the runner deletes the row; do not hold it open meanwhile
    _, event = await bus.request(Subject.DELETE_REQUESTED, DeleteRequested(deployment_id=deployment_id, purge=purge),
                                 answers=(Subject.DELETE_COMPLETED, Subject.DELETE_FAILED), timeout=180)
    if isinstance(event, Failure):
        _raise_failure(event)


async def stop(
    session: AsyncSession, bus: Bus, deployment_id: int, wait: bool = False, user: User | None = None
) -> Deployment:
    deployment = await get_deployment(session, deployment_id, user)
    if S(deployment.status) not in allowed_sources(S.STOPPING):
        return deployment  # nothing runs: stopping is a no-op, not an error
    command = StopRequested(deployment_id=deployment_id)
    if wait:
        _, event = await bus.request(
            Subject.STOP_REQUESTED, command, answers=(Subject.STOP_COMPLETED, Subject.STOP_FAILED), timeout=120
        )
        if isinstance(event, Failure):
            _raise_failure(event)
    else:
        await bus.send(Subject.STOP_REQUESTED, command)
    await session.refresh(deployment)
    return deployment

"""The build session: what to build for a deployment (BuildJob, build_jobs) and the build handler's logic.
Runs without a broker in tests."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
from docker.errors import DockerException
from sqlalchemy import func, select, update

from services.builder.cache_mounts import with_cache_mounts
from services.builder.generate import check_files
from services.builder.own_files import service_image
from services.builder.service import COMPOSE_FILE, DOCKERFILE, app_dir_of
from services.builder.slots import SlotWaitAbandoned, build_slot
from shared.checkout import source_root
from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.db.repository import record_event, transition
from shared.db.status import DeploymentStatus as S
from shared.docker import Owner, docker_client
from shared.docker.build import (
    BuildLimits,
    BuildLine,
    BuildOutcome,
    build_context,
    build_image,
    build_image_buildkit,
    buildkit_client_ok,
    push_image,
)
from shared.docker.dockerfile import parse_dockerfile
from shared.docker.policy import check_dockerfile_policy
from shared.docker.resolved import Checked
from shared.docker.validate import check_dockerfile
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import BuildCompleted, BuildFailed, BuildRequested
from shared.messaging.outbox import stage
from shared.messaging.public import BuildFinished
from shared.messaging.subjects import PublicSubject, Subject
from shared.secrets import deployment_env
from shared.source import SourceTree
from shared.worker import WorkerContext

log = logging.getLogger(__name__)
CACHE_LAYER_GONE = re.compile(r'unable to find image "sha256:[0-9a-f]+"')


def _dockerignore_patterns(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@dataclass(frozen=True)
class BuildJob:
    """One image to build: the app's (from the Dockerfile saved in Postgres) or another service of the
    repository's own compose file (from its Dockerfile on disk)."""

    service: str
    context_dir: Path
    dockerfile_name: str
    dockerfile: str
    ignore: list[str]
    tag: str
    target: str | None = None
    args: dict[str, str] = field(default_factory=dict)


def build_jobs(
    settings: Settings,
    deployment: Deployment,
    checked: Checked,
    app_dir: Path,
    owner: Owner,
    repo_root: Path,
    tag: str,
) -> list[BuildJob]:
    """What to build for a deployment: the app image, plus every other service the repository's compose file
    builds (compose runs with --no-build), read from the model Compose resolved (interpolated, contained).
    Every Dockerfile passes the policy with the build args it gets. Empty when the app runs a published image."""
    theirs = [f for f in (deployment.compose_files or []) if f != COMPOSE_FILE]
    if not theirs:
        return [BuildJob("app", app_dir, DOCKERFILE, deployment.dockerfile_content or "",
                         _dockerignore_patterns(deployment.dockerignore_content or ""), tag)]
    app_service = deployment.app_service or "app"
    tree = SourceTree(repo_root)
    jobs = []
    for name, service in (checked.model.get("services") or {}).items():
        build = service.get("build")
        if not build:
            continue
        context = Path(build["context"]).resolve()  # inside the repository: checked with the model
        rel = os.path.relpath(context, repo_root)
        dockerfile_name = str(build.get("dockerfile") or "Dockerfile")
        args = {str(k): str(v) for k, v in (build.get("args") or {}).items() if v is not None}
        ignore_text = tree.read_text(os.path.normpath(f"{rel}/.dockerignore"))
        ignore = [*(_dockerignore_patterns(ignore_text) if ignore_text is not None else [".git"]), ".deployment"]
        if name == app_service:
            # The saved (possibly edited) Dockerfile, under the path the compose file names.
            text, image = deployment.dockerfile_content or "", tag
        else:
            found = tree.read_text(os.path.normpath(f"{rel}/{dockerfile_name}"))
            if found is None:
                raise PortsideError(
                    ErrorCode.INVALID_DOCKERFILE,
                    f"{theirs[0]}: service `{name}` builds from {rel}/{dockerfile_name}, which is not a "
                    "file inside the repository.",
                )
            text, image = found, service_image(owner, name, app_service)
        check_dockerfile(text, settings.allowed_registries, build_args=args)
        jobs.append(BuildJob(name, context, dockerfile_name, text, ignore, image, build.get("target"), args))
    return jobs


async def build(ctx: WorkerContext, event: BuildRequested) -> None:
    """Build the deployment's image from the files saved in Postgres (the user's edits included), after the
    same checks as an edit. Abandoned when the deployment leaves `building` (stopped) or the timeout passes."""
    deployment_id = event.deployment_id
    settings = ctx.settings
    async with ctx.sessions() as session:
        # Which replica builds (pid, and the host name: every replica in a container is pid 1).
        who = f"builder pid {os.getpid()} on {socket.gethostname()}"
        result = await transition(session, deployment_id, S.BUILDING, f"build started ({who})")
        if not result.applied and result.current != S.BUILDING:
            log.info("build %s skipped: status is %s", deployment_id, result.current)
            code = await session.scalar(select(Deployment.error_code).where(Deployment.id == deployment_id))
            if code == ErrorCode.BUILD_CANCELLED:
                await _report_cancelled(ctx, event, "before it started", result.current)
            return
        await session.commit()
        deployment = await session.get(Deployment, deployment_id)
        assert deployment is not None
        repo = await session.get(Repository, deployment.repository_id)
        assert repo is not None
        # Variables marked `build` become build arguments of the app image (a Dockerfile reads them with ARG).
        build_args = {v.key: v.value for v in await deployment_env(session, settings, deployment_id) if v.build}

    repo_root = Path(repo.path).resolve()
    app_dir_error: PortsideError | None = None
    try:
        # The API's clone when it is on this disk, otherwise this builder's own checkout of its commit.
        repo_root = (await anyio.to_thread.run_sync(source_root, settings, repo)).resolve()
        app_dir = app_dir_of(repo_root, deployment)
    except PortsideError as exc:
        app_dir, app_dir_error = repo_root, exc

    async def still_building() -> bool:
        # Also keeps updated_at fresh: the reconciler must not take a long wait for a builder that died.
        async with ctx.sessions() as check:
            touched = await check.execute(update(Deployment).where(
                Deployment.id == deployment_id, Deployment.status == S.BUILDING).values(updated_at=func.now()))
            await check.commit()
        return bool(touched.rowcount)  # type: ignore[attr-defined]

    waited: list[float] = []

    async def on_wait(busy: int) -> None:
        waited.append(time.monotonic())
        message = (f"waiting for a build slot: {busy} of {settings.max_concurrent_builds} in use "
                   "(PORTSIDE_MAX_CONCURRENT_BUILDS)")
        async with ctx.sessions() as session:
            await record_event(session, deployment_id, S.BUILDING, message)
            await session.commit()
        await ctx.log(deployment_id, message)

    try:
        async with build_slot(ctx.engine, settings.max_concurrent_builds, still_building, on_wait,
                              settings.build_cancel_poll_seconds) as slot:
            if waited:
                # The build's own clock (timeout, reconciler) starts now, not when it began to wait.
                async with ctx.sessions() as session:
                    await transition(session, deployment_id, S.BUILDING,
                                     f"build slot {slot} free after {time.monotonic() - waited[0]:.1f} s; building")
                    await session.commit()
            await _build_and_report(ctx, event, deployment, repo_root, app_dir, app_dir_error, build_args)
    except SlotWaitAbandoned:
        async with ctx.sessions() as session:
            status = await session.scalar(select(Deployment.status).where(Deployment.id == deployment_id))
        await _report_cancelled(ctx, event, f"before it got a build slot (deployment is {status})", status)


async def _report_cancelled(ctx: WorkerContext, event: BuildRequested, when: str, status: str | None) -> None:
    """The user cancelled or stopped the build: whoever moved the deployment on owns its status now; the
    build only says it ended, so a caller waiting on the deploy is answered."""
    await ctx.log(event.deployment_id, f"build cancelled {when}")
    why = "cancelled" if status == S.BUILD_FAILED else "cancelled: the deployment was stopped"
    await ctx.publish(Subject.BUILD_FAILED, BuildFailed(
        correlation_id=event.correlation_id, deployment_id=event.deployment_id,
        error_code=ErrorCode.BUILD_CANCELLED, message=f"The build was {why}."))


async def _build_and_report(
    ctx: WorkerContext,
    event: BuildRequested,
    deployment: Deployment,
    repo_root: Path,
    app_dir: Path,
    app_dir_error: PortsideError | None,
    build_args: dict[str, str],
) -> None:
    """Build every image of the deployment while holding a build slot, then record and publish the outcome."""
    deployment_id = event.deployment_id
    settings = ctx.settings
    limits = BuildLimits.of(settings)
    owner = Owner.of(settings, deployment_id)
    tag = f"{owner.image_repo}:{int(time.time())}"
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[BuildLine | None] = asyncio.Queue()
    stop = threading.Event()
    stop_reason: list[str] = []

    def on_line(line: BuildLine) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    async def relay() -> None:
        # One consumer keeps the lines in order on the logs stream.
        while (line := await lines.get()) is not None:
            await ctx.log(deployment_id, line.text, "build", step=line.step, total_steps=line.total_steps)

    async def watch(deadline: float) -> None:
        """Cancel and timeout: checked between output lines through `stop` (the DB at most every poll)."""
        while not stop.is_set():
            await anyio.sleep(min(settings.build_cancel_poll_seconds, max(deadline - time.monotonic(), 0.05)))
            if time.monotonic() >= deadline:
                stop_reason.append("timeout")
                stop.set()
                return
            async with ctx.sessions() as check:
                status = await check.scalar(select(Deployment.status).where(Deployment.id == deployment_id))
            if status != S.BUILDING:
                stop_reason.append(f"cancel:{status}")
                stop.set()
                return

    def run_build() -> tuple[list[str], BuildOutcome | None, int | None]:
        warnings, checked = check_files(settings, deployment, app_dir, owner=owner, repo_root=repo_root)
        jobs = build_jobs(settings, deployment, checked, app_dir, owner, repo_root, tag)
        jobs = [replace(j, args={**j.args, **build_args}) if j.tag == tag else j for j in jobs]
        for job in jobs:
            if job.tag == tag and build_args:
                # The deployment's build variables can change a FROM too: the base images are checked with them.
                check_dockerfile_policy(parse_dockerfile(job.dockerfile), settings.allowed_registries, job.args)
        client = docker_client(settings)
        buildkit, why = builder_choice(settings, limits)
        on_line(BuildLine(why))
        try:
            app_outcome: BuildOutcome | None = None
            for job in jobs:
                if len(jobs) > 1 or job.service != "app":
                    on_line(BuildLine(f"building service `{job.service}` as {job.tag}"))
                for attempt in range(2):
                    if buildkit:
                        # The saved file stays plain; the cache mounts exist only in what BuildKit is given.
                        text = with_cache_mounts(job.dockerfile, owner)
                        context = build_context(str(job.context_dir), job.dockerfile_name, text, job.ignore)
                        outcome = build_image_buildkit(
                            settings.docker_host, context=context, dockerfile=job.dockerfile_name, tag=job.tag,
                            labels=owner.labels, on_line=on_line, should_stop=stop.is_set, target=job.target,
                            buildargs=job.args,
                        )
                        break
                    context = build_context(str(job.context_dir), job.dockerfile_name, job.dockerfile, job.ignore)
                    outcome = build_image(
                        client, context=context, dockerfile=job.dockerfile_name, tag=job.tag, labels=owner.labels,
                        on_line=on_line, should_stop=stop.is_set, target=job.target, buildargs=job.args,
                        limits=limits,
                    )
                    # The classic builder loses a cached layer when an image is removed while it builds on it
                    # ("unable to find image sha256:..."): once more, and the missing layer is simply rebuilt.
                    if outcome.succeeded or attempt or not CACHE_LAYER_GONE.search(outcome.error or ""):
                        break
                    on_line(BuildLine("a cached layer was removed during the build; building once more"))
                if not outcome.succeeded:
                    return warnings, outcome, None
                if job.tag == tag:
                    app_outcome = outcome
            if owner.registry:
                # Swarm: the nodes pull what the runner deploys, so every image of the deployment goes to the registry.
                for job in jobs:
                    push_image(client, job.tag, on_line)
            size = None
            if app_outcome is not None and app_outcome.image_id:
                try:
                    size = int(client.images.get(app_outcome.image_id).attrs.get("Size") or 0) or None
                except DockerException:
                    size = None
            return warnings, app_outcome, size
        finally:
            client.close()

    relay_task = asyncio.create_task(relay())
    started = time.monotonic()
    watch_task = asyncio.create_task(watch(started + settings.build_timeout_seconds))
    error: PortsideError | None = None
    outcome: BuildOutcome | None = None
    size: int | None = None
    warnings: list[str] = []
    try:
        if app_dir_error is not None:
            raise app_dir_error
        if not app_dir.is_dir():
            raise PortsideError(
                ErrorCode.REPO_NOT_FOUND,
                f"The app directory {app_dir} no longer exists; register the repository again.",
            )
        # The hard limit only matters for a step that prints nothing: `stop` ends a talking build sooner.
        with anyio.fail_after(settings.build_timeout_seconds + 30):
            warnings, outcome, size = await anyio.to_thread.run_sync(run_build, abandon_on_cancel=True)
    except PortsideError as exc:
        error = exc
    except TimeoutError:
        stop_reason.append("timeout")
    finally:
        stop.set()
        watch_task.cancel()
        lines.put_nowait(None)
        await relay_task
    seconds = round(time.monotonic() - started, 2)
    for warning in warnings:
        await ctx.log(deployment_id, f"hadolint: {warning}")
    if error is None and (outcome is None or not outcome.succeeded) and stop_reason:
        if stop_reason[0] == "timeout":
            error = PortsideError(
                ErrorCode.BUILD_TIMEOUT,
                f"The build took longer than {settings.build_timeout_seconds:.0f} s; "
                "raise PORTSIDE_BUILD_TIMEOUT_SECONDS or make the build faster.",
            )
        else:
            status = stop_reason[0].split(":", 1)[1]
            await _report_cancelled(ctx, event, f"after {seconds} s (deployment is {status})", status)
            return

    # One way out for every failure: the engine's or Portside's error, or a step that failed (its tail kept).
    log_line = f"build failed: {error.message}" if error is not None else ""
    if error is None and outcome is not None and not outcome.succeeded:
        where = f" at {outcome.failing_step}" if outcome.failing_step else ""
        code, message = ErrorCode.BUILD_FAILED, f"The build failed{where}: {outcome.error}"
        if out_of_memory(outcome, limits):
            code, message = ErrorCode.BUILD_RESOURCE_LIMIT, (
                f"The build ran out of memory{where}: the step went over the build's "
                f"{(limits.memory or 0) // 1024**2} MB cap and was killed (exit 137). Raise "
                "PORTSIDE_BUILD_MEMORY, or make the step use less memory."
            )
        error = PortsideError(code, message + "\n" + "\n".join(outcome.tail[-15:]))
        log_line = f"build failed{where}: {outcome.error}"

    async with ctx.sessions() as session:
        if error is not None:
            target = (
                S.ERROR if error.code in (ErrorCode.DOCKER_UNAVAILABLE, ErrorCode.REPO_NOT_FOUND, ErrorCode.PUSH_FAILED)
                else S.BUILD_FAILED
            )
            await transition(
                session, deployment_id, target, error.message, error_code=error.code, build_seconds=seconds
            )
            await session.commit()
            await ctx.log(deployment_id, log_line)
            await ctx.publish(
                Subject.BUILD_FAILED,
                BuildFailed(
                    correlation_id=event.correlation_id,
                    deployment_id=deployment_id,
                    error_code=error.code,
                    message=error.message,
                ),
            )
            return
        if outcome is None:
            # The app runs a published image from the repository's compose file: nothing to build.
            image = _published_image(deployment.dockerfile_content or "")
            await record_event(session, deployment_id, S.BUILDING, f"nothing to build: the app runs {image}")
            await stage(session, PublicSubject.BUILD_FINISHED, BuildFinished(
                deployment_id=deployment_id, succeeded=True, duration_seconds=seconds, image_tag=image))
            await session.commit()
            await ctx.log(deployment_id, f"nothing to build: service `{deployment.app_service}` runs the image {image}")
            await ctx.publish(
                Subject.BUILD_COMPLETED,
                BuildCompleted(
                    correlation_id=event.correlation_id,
                    deployment_id=deployment_id,
                    image_id="",
                    image_tag=image,
                    build_seconds=seconds,
                ),
            )
            return
        await session.execute(
            update(Deployment).where(Deployment.id == deployment_id).values(
                image_id=outcome.image_id, image_tag=tag, build_seconds=seconds, image_size_bytes=size)
        )
        size_text = f", {size / 1e6:.0f} MB" if size else ""
        await record_event(session, deployment_id, S.BUILDING, f"image {tag} built in {seconds} s{size_text}")
        await stage(session, PublicSubject.BUILD_FINISHED, BuildFinished(
            deployment_id=deployment_id, succeeded=True, duration_seconds=seconds, image_tag=tag))
        await session.commit()
    await ctx.log(deployment_id, f"image {tag} built in {seconds} s{size_text}")
    await ctx.publish(
        Subject.BUILD_COMPLETED,
        BuildCompleted(
            correlation_id=event.correlation_id,
            deployment_id=deployment_id,
            image_id=outcome.image_id or "",
            image_tag=tag,
            build_seconds=seconds,
        ),
    )


def builder_choice(settings: Settings, limits: BuildLimits) -> tuple[bool, str]:
    """BuildKit or the classic builder (PORTSIDE_BUILDKIT), and the build log's sentence saying which and why."""
    if settings.buildkit == "off":
        return False, "building with the classic builder (PORTSIDE_BUILDKIT=off)"
    capped = limits.memory is not None or limits.cpus is not None
    if settings.buildkit == "auto" and capped:
        return False, ("building with the classic builder: PORTSIDE_BUILDKIT=auto keeps the build caps "
                       f"({limits.describe()}), which BuildKit would not apply")
    if not buildkit_client_ok(settings.docker_host):
        if settings.buildkit == "on":
            raise PortsideError(
                ErrorCode.DOCKER_UNAVAILABLE,
                "PORTSIDE_BUILDKIT=on, but BuildKit does not work here: it needs Debian's 20.10 Docker client at "
                "/usr/bin/docker (apt-get install docker.io). Install it, or set PORTSIDE_BUILDKIT=auto or off.",
            )
        return False, "building with the classic builder (PORTSIDE_BUILDKIT=auto: no working BuildKit client here)"
    note = "; the build caps do not apply to BuildKit's steps" if capped else ""
    return True, f"building with BuildKit (PORTSIDE_BUILDKIT={settings.buildkit}), cache mounts for downloads{note}"


def out_of_memory(outcome: BuildOutcome, limits: BuildLimits) -> bool:
    """A step killed for memory: the engine saw an OOM, or it died of SIGKILL (137) under a memory cap."""
    return outcome.oom_killed or (outcome.exit_code == 137 and limits.memory is not None)


def _published_image(dockerfile: str) -> str:
    images = parse_dockerfile(dockerfile).base_images()
    return images[0].reference if images else ""

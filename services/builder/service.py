"""Builder business logic: generate files for a deployment, build its image. Runs without a broker in
tests; handlers.py only parses, calls these and acknowledges."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from services.builder.compose import render_compose
from services.builder.dockerfile import render_dockerfile, render_dockerignore
from services.builder.plan import plan_for
from shared.db.models import Deployment, Repository
from shared.db.repository import record_event, transition
from shared.db.status import DeploymentStatus as S
from shared.detection import Detection
from shared.docker import Owner, docker_client
from shared.docker.build import BuildLine, BuildOutcome, build_context, build_image
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import (
    BuildCompleted,
    BuildFailed,
    BuildRequested,
    GenerateCompleted,
    GenerateFailed,
    GenerateRequested,
)
from shared.messaging.subjects import Subject
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

DEPLOYMENT_DIR = ".deployment"
DOCKERFILE = f"{DEPLOYMENT_DIR}/Dockerfile"


@dataclass(frozen=True)
class GeneratedFiles:
    dockerfile: str
    compose: str
    dockerignore: str


def app_dir_of(repo: Repository, deployment: Deployment) -> Path:
    return (Path(repo.path) / deployment.app_path).resolve()


def generate_files(
    detection: Detection,
    app_dir: Path,
    *,
    owner: Owner,
    repo_name: str,
    port_override: int | None = None,
) -> GeneratedFiles:
    """Raises ValueError with a user-facing sentence when no Dockerfile can be generated."""
    plan = plan_for(detection, app_dir, port_override)
    # sqlite lives in the app's own files: no service container for it.
    services = detection.services or [detection.detected_db]
    return GeneratedFiles(
        dockerfile=render_dockerfile(plan),
        compose=render_compose(owner=owner, repo_name=repo_name, port=plan.port, services=services),
        dockerignore=render_dockerignore(app_dir),
    )


def write_files(app_dir: Path, files: GeneratedFiles) -> Path:
    """Save under <app>/.deployment/, where users read and edit them."""
    target = app_dir / DEPLOYMENT_DIR
    target.mkdir(exist_ok=True)
    (target / "Dockerfile").write_text(files.dockerfile)
    (target / "docker-compose.yml").write_text(files.compose)
    (target / ".dockerignore").write_text(files.dockerignore)
    # The compose file holds generated passwords.
    (target / "docker-compose.yml").chmod(0o600)
    return target


async def generate(ctx: WorkerContext, event: GenerateRequested) -> None:
    failure: GenerateFailed | None = None
    async with ctx.sessions() as session:
        deployment = await session.get(Deployment, event.deployment_id)
        if deployment is None:
            log.warning("generate: deployment %s is gone", event.deployment_id)
            return
        repo = await session.get(Repository, deployment.repository_id)
        assert repo is not None  # FK with cascade
        if deployment.status != S.GENERATING:
            # A redelivery after the work was committed: say it is done again so a waiting API answers.
            if deployment.status == S.READY:
                await ctx.publish(Subject.GENERATE_COMPLETED, GenerateCompleted(
                    correlation_id=event.correlation_id, deployment_id=deployment.id))
            return
        detection = Detection.model_validate((repo.detection or {}).get(deployment.app_path) or {})
        if deployment.stack and deployment.stack != detection.stack:
            detection = detection.model_copy(update={"stack": deployment.stack})
        app_dir = app_dir_of(repo, deployment)
        try:
            files = generate_files(
                detection, app_dir, owner=Owner.of(ctx.settings, deployment.id), repo_name=deployment.repo_name,
                port_override=deployment.internal_port,
            )
            docker_path = await anyio.to_thread.run_sync(write_files, app_dir, files)
        except (ValueError, OSError) as exc:
            code = ErrorCode.UNSUPPORTED_STACK if isinstance(exc, ValueError) else ErrorCode.GENERATION_FAILED
            await transition(session, deployment.id, S.ERROR, str(exc), error_code=code)
            failure = GenerateFailed(correlation_id=event.correlation_id, deployment_id=deployment.id,
                                     error_code=code, message=str(exc))
        else:
            await transition(
                session, deployment.id, S.READY, "Dockerfile and compose file generated",
                dockerfile_content=files.dockerfile, compose_content=files.compose,
                dockerignore_content=files.dockerignore, docker_path=str(docker_path),
                stack=detection.stack, framework=detection.framework,
                package_manager=detection.package_manager, confidence_score=detection.confidence,
                detected_db=detection.detected_db, internal_port=plan_for(detection, app_dir, deployment.internal_port).port,
            )
        await session.commit()
    if failure:
        await ctx.publish(Subject.GENERATE_FAILED, failure)
    else:
        await ctx.publish(Subject.GENERATE_COMPLETED,
                          GenerateCompleted(correlation_id=event.correlation_id, deployment_id=event.deployment_id))


def _dockerignore_patterns(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


async def build(ctx: WorkerContext, event: BuildRequested) -> None:
    """Build the deployment's image from the files saved in Postgres (the user's edits included)."""
    deployment_id = event.deployment_id
    async with ctx.sessions() as session:
        result = await transition(session, deployment_id, S.BUILDING, "build started")
        if not result.applied and result.current != S.BUILDING:
            log.info("build %s skipped: status is %s", deployment_id, result.current)
            return
        await session.commit()
        deployment = await session.get(Deployment, deployment_id)
        assert deployment is not None
        repo = await session.get(Repository, deployment.repository_id)
        assert repo is not None
        app_dir = app_dir_of(repo, deployment)
        dockerfile = deployment.dockerfile_content or ""
        dockerignore = deployment.dockerignore_content or ""

    tag = f"{Owner.of(ctx.settings, deployment_id).image_repo}:{int(time.time())}"
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[BuildLine | None] = asyncio.Queue()

    def on_line(line: BuildLine) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    async def relay() -> None:
        # One consumer keeps the lines in order on the logs stream.
        while (line := await lines.get()) is not None:
            await ctx.log(deployment_id, line.text, "build", step=line.step, total_steps=line.total_steps)

    def run_build() -> BuildOutcome:
        client = docker_client(ctx.settings)
        try:
            context = build_context(str(app_dir), DOCKERFILE, dockerfile, _dockerignore_patterns(dockerignore))
            return build_image(
                client, context=context, dockerfile=DOCKERFILE, tag=tag,
                labels=Owner.of(ctx.settings, deployment_id).labels, on_line=on_line,
            )
        finally:
            client.close()

    relay_task = asyncio.create_task(relay())
    started = time.monotonic()
    error: PortsideError | None = None
    outcome: BuildOutcome | None = None
    try:
        if not app_dir.is_dir():
            raise PortsideError(ErrorCode.REPO_NOT_FOUND, f"The app directory {app_dir} no longer exists; register the repository again.")
        with anyio.fail_after(ctx.settings.build_timeout_seconds):
            outcome = await anyio.to_thread.run_sync(run_build, abandon_on_cancel=True)
    except PortsideError as exc:
        error = exc
    except TimeoutError:
        error = PortsideError(ErrorCode.BUILD_TIMEOUT, f"The build took longer than {ctx.settings.build_timeout_seconds:.0f} s; raise PORTSIDE_BUILD_TIMEOUT_SECONDS or make the build faster.")
    finally:
        lines.put_nowait(None)
        await relay_task
    seconds = round(time.monotonic() - started, 2)

    async with ctx.sessions() as session:
        if error is not None:
            target = S.ERROR if error.code == ErrorCode.DOCKER_UNAVAILABLE or error.code == ErrorCode.REPO_NOT_FOUND else S.BUILD_FAILED
            await transition(session, deployment_id, target, error.message, error_code=error.code, build_seconds=seconds)
            await session.commit()
            await ctx.log(deployment_id, f"build failed: {error.message}")
            await ctx.publish(Subject.BUILD_FAILED, BuildFailed(correlation_id=event.correlation_id, deployment_id=deployment_id, error_code=error.code, message=error.message))
            return
        assert outcome is not None
        if not outcome.succeeded:
            where = f" at {outcome.failing_step}" if outcome.failing_step else ""
            message = f"The build failed{where}: {outcome.error}\n" + "\n".join(outcome.tail[-15:])
            await transition(session, deployment_id, S.BUILD_FAILED, message, error_code=ErrorCode.BUILD_FAILED, build_seconds=seconds)
            await session.commit()
            await ctx.log(deployment_id, f"build failed{where}: {outcome.error}")
            await ctx.publish(Subject.BUILD_FAILED, BuildFailed(correlation_id=event.correlation_id, deployment_id=deployment_id, error_code=ErrorCode.BUILD_FAILED, message=message))
            return
        await session.execute(
            Deployment.__table__.update().where(Deployment.id == deployment_id).values(
                image_id=outcome.image_id, image_tag=tag, build_seconds=seconds)
        )
        await record_event(session, deployment_id, S.BUILDING, f"image {tag} built in {seconds} s")
        await session.commit()
    await ctx.log(deployment_id, f"image {tag} built in {seconds} s")
    await ctx.publish(Subject.BUILD_COMPLETED, BuildCompleted(correlation_id=event.correlation_id, deployment_id=deployment_id, image_id=outcome.image_id or "", image_tag=tag, build_seconds=seconds))

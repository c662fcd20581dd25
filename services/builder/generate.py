"""Generation: the Dockerfile, compose file and .dockerignore for a deployment, their checks, the export to
<app>/.deployment/, and the generate handler's logic. Runs without a broker in tests."""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from services.builder.compose import render_compose
from services.builder.dockerfile import render_dockerfile, render_dockerignore
from services.builder.own_files import (
    build_targets,
    own_compose,
    own_dockerfile,
    own_dockerignore,
    render_override,
)
from services.builder.plan import chosen_stack, plan_for
from services.builder.service import COMPOSE_FILE, DEPLOYMENT_DIR, app_dir_of
from shared.checkout import source_root
from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.db.repository import load_detection, transition
from shared.db.status import DeploymentStatus as S
from shared.detection import Detection
from shared.docker import Owner
from shared.docker.dockerfile import parse_dockerfile
from shared.docker.policy import check_dockerfile_policy, load_compose
from shared.docker.resolved import Checked
from shared.docker.validate import check_compose, check_dockerfile
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import GenerateCompleted, GenerateFailed, GenerateRequested
from shared.messaging.subjects import Subject
from shared.secrets import seal_generated
from shared.source import SourceTree
from shared.worker import WorkerContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratedFiles:
    dockerfile: str
    compose: str
    dockerignore: str
    # Compose files relative to the app directory, in `-f` order (a repository's own file, then the override).
    compose_files: list[str] = field(default_factory=lambda: [COMPOSE_FILE])
    app_service: str = "app"
    port: int | None = None
    # What Portside did that the user should know (own files used, assumptions); logged and recorded.
    notes: list[str] = field(default_factory=list)
    # The directory the files are for, when a monorepo's primary app was picked (else the one given).
    app_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    # The Dockerfile is the repository's own (lint findings are then warnings, never a refusal).
    dockerfile_from_repo: bool = False



def _primary(detection: Detection, app_dir: Path) -> tuple[Detection, Path, list[str]]:
    """In a monorepo the detection describes the primary app: generate for that app's own directory."""
    if not detection.primary_app or not detection.apps:
        return detection, app_dir, []
    sub = next((a for a in detection.apps if a.app_path == detection.primary_app), None)
    if sub is None or sub.stack != detection.stack:
        # Another stack than the primary app's was asked for: its plan is not the one to build (plan_for refuses).
        return detection, app_dir, []
    relative = (
        Path(detection.primary_app).relative_to(detection.app_path)
        if detection.app_path
        else Path(detection.primary_app)
    )
    note = (f"Monorepo: building {detection.primary_app} (the primary app); deploy another one with "
            f"app_path ({', '.join(a.app_path for a in detection.apps)}).")
    return sub, app_dir / relative, [note]


def generate_files(
    detection: Detection,
    app_dir: Path,
    *,
    owner: Owner,
    repo_name: str,
    port_override: int | None = None,
    cpus: float | None = None,
    memory: str | None = None,
    repo_root: Path | None = None,
    use_repo_files: bool = True,
) -> GeneratedFiles:
    """Raises PortsideError (UNSUPPORTED_STACK, ...) with a user-facing sentence when no Dockerfile can be
    generated. Reads the repository only through SourceTree, confined to `repo_root` (the app directory when not
    given). `use_repo_files=False` ignores the repository's own Dockerfile and compose file: Portside's plan builds
    the app."""
    # The repository's own compose file at the directory asked for wins (in a monorepo it usually runs every app);
    # otherwise, in a monorepo, the primary app's directory is what gets built.
    notes: list[str] = []
    root = Path(repo_root or app_dir).resolve()

    def tree_of(directory: Path) -> SourceTree:
        return SourceTree(root, os.path.relpath(directory.resolve(), root))

    tree = tree_of(app_dir)
    if not use_repo_files and (own_compose(tree) or own_dockerfile(tree)):
        notes.append("The repository's own Dockerfile / compose file is ignored (use_repo_dockerfile: false): "
                     "Portside generated both from its own plan.")
    if not use_repo_files or (not own_compose(tree) and not own_dockerfile(tree)):
        detection, app_dir, more = _primary(detection, app_dir)
        notes += more
        tree = tree_of(app_dir)
    their_dockerfile = own_dockerfile(tree) if use_repo_files else None
    their_compose = own_compose(tree) if use_repo_files else None
    if their_compose:
        text = tree.read_text(their_compose) or ""
        override = render_override(owner, their_compose, text, port_override or detection.internal_port)
        doc, _ = load_compose(text)
        notes += override.notes
        app_build = next((t for t in build_targets(doc) if t.service == override.app_service), None)
        dockerignore = own_dockerignore(tree)
        from_repo = True
        app_dockerfile = tree.read_text(os.path.normpath(f"{app_build.context}/{app_build.dockerfile}")) \
            if app_build is not None else None
        if app_build is None:
            # Nothing to build for the app: it runs a published image. The file below is informational only.
            image = str((doc.get("services") or {}).get(override.app_service, {}).get("image", ""))
            dockerfile = (f"# The app service `{override.app_service}` runs the image {image} from {their_compose}; "
                          f"nothing is built.\nFROM {image or 'scratch'}\n")
        elif app_dockerfile is not None:
            dockerfile = app_dockerfile
        elif app_build.context.strip("./") == "":
            # Their compose file builds the app from a Dockerfile the repository does not have: Portside writes it.
            plan = plan_for(detection, override.port)
            dockerfile, dockerignore = render_dockerfile(plan), render_dockerignore(app_dir)
            from_repo = False
            notes.append(
                f"{their_compose} builds `{override.app_service}` from {app_build.dockerfile}, which is not in "
                "the repository: Portside generated it."
            )
        else:
            raise PortsideError(ErrorCode.UNSUPPORTED_STACK, f"{their_compose} builds `{override.app_service}` from "
                             f"{app_build.context}/{app_build.dockerfile}, which is not a file inside the repository.")
        return GeneratedFiles(
            dockerfile=dockerfile, compose=override.text, dockerignore=dockerignore,
            compose_files=[their_compose, COMPOSE_FILE], app_service=override.app_service, port=override.port,
            notes=notes, app_dir=app_dir, dockerfile_from_repo=from_repo,
        )
    if their_dockerfile:
        dockerfile_text = tree.read_text(their_dockerfile) or ""
        port = port_override or detection.internal_port or _exposed_port(dockerfile_text)
        compose = render_compose(owner=owner, repo_name=repo_name, port=port or 8080, services=_services(detection),
                                 cpus=cpus, memory=memory, dockerfile=their_dockerfile)
        return GeneratedFiles(
            dockerfile=dockerfile_text,
            compose=compose,
            dockerignore=own_dockerignore(tree),
            port=port or 8080,
            app_dir=app_dir,
            dockerfile_from_repo=True,
            notes=notes
            + [f"Using the repository's own {their_dockerfile}, unchanged; Portside generated only the compose file."],
        )
    plan = plan_for(detection, port_override)
    # A workspace member builds from the workspace root (its packages and lockfile live there).
    build_dir = (app_dir / plan.workspace_root).resolve() if plan.workspace_root else app_dir
    return GeneratedFiles(
        dockerfile=render_dockerfile(plan),
        compose=render_compose(owner=owner, repo_name=repo_name, port=plan.port, services=_services(detection),
                               cpus=cpus, memory=memory),
        dockerignore=render_dockerignore(build_dir),
        port=plan.port, notes=notes, app_dir=build_dir,
    )


def _services(detection: Detection) -> list[str]:
    # sqlite lives in the app's own files: no service container for it (render_compose skips unknown kinds).
    return detection.services or [detection.detected_db]


def _exposed_port(dockerfile: str) -> int | None:
    ports = parse_dockerfile(dockerfile).exposed_ports()
    return ports[-1] if ports else None


def check_files(
    settings: Settings, files: GeneratedFiles | Deployment, app_dir: Path, *, owner: Owner, repo_root: Path
) -> tuple[list[str], Checked]:
    """Syntax, lint and policy of a deployment's files, the compose files as Compose resolves them. Raises
    PortsideError; returns the warnings (lint, dropped ports) and the checked model."""
    dockerfile = files.dockerfile if isinstance(files, GeneratedFiles) else files.dockerfile_content or ""
    compose = files.compose if isinstance(files, GeneratedFiles) else files.compose_content or ""
    compose_files = list(files.compose_files or [COMPOSE_FILE])
    app_service = files.app_service or "app"
    # Only a Dockerfile Portside wrote itself is held to hadolint's errors; a repository's or a user's is not.
    strict = isinstance(files, GeneratedFiles) and not files.dockerfile_from_repo
    warnings = check_dockerfile(dockerfile, settings.allowed_registries, strict_lint=strict)
    checked = check_compose(settings, compose, owner=owner, repo_root=repo_root, app_dir=app_dir,
                            app_service=app_service, before=[f for f in compose_files if f != COMPOSE_FILE])
    # The build args the compose file passes can change a FROM: check the base images with them too.
    args = ((checked.model.get("services") or {}).get(app_service) or {}).get("build", {}).get("args") or {}
    if args:
        check_dockerfile_policy(parse_dockerfile(dockerfile), settings.allowed_registries,
                                {str(k): str(v) for k, v in args.items() if v is not None})
    return warnings + checked.warnings, checked


def write_files(repo_root: Path, app_dir: Path, files: GeneratedFiles) -> Path:
    """Export the files to <app>/.deployment/ for people to read; Postgres holds the copy Portside builds from.
    Writes never follow a symlink: a repository that commits `.deployment` as a link gets nothing written."""
    tree = SourceTree(repo_root, os.path.relpath(app_dir, repo_root))
    try:
        tree.write_text(f"{DEPLOYMENT_DIR}/Dockerfile", files.dockerfile)
        # The compose file holds generated passwords.
        tree.write_text(f"{DEPLOYMENT_DIR}/docker-compose.yml", files.compose, mode=0o600)
        tree.write_text(f"{DEPLOYMENT_DIR}/.dockerignore", files.dockerignore)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EEXIST):
            raise PortsideError(
                ErrorCode.PATH_OUTSIDE_REPOSITORY,
                f"{DEPLOYMENT_DIR}/ in the repository is a symlink (or holds one); Portside writes its "
                "files only into a real folder of the repository. Remove it from the repository.",
            ) from exc
        raise
    return app_dir / DEPLOYMENT_DIR


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
        stored = await load_detection(session, repo.id, deployment.app_path)
        # No stored detection is a failure with a code, never a silent stack "unknown".
        detection = stored or Detection(stack=deployment.stack or "unknown")
        if deployment.stack and deployment.stack != detection.stack:
            detection = chosen_stack(detection, deployment.stack)
        settings = ctx.settings
        owner = Owner.of(settings, deployment.id)

        def make() -> tuple[GeneratedFiles, list[str], Path, Path, Path]:
            if stored is None:
                raise PortsideError(
                    ErrorCode.DETECTION_FAILED,
                    f"No detection is stored for app path "
                    f"'{deployment.app_path}'; detect it first (POST /api/deployments/detect/{repo.id}).",
                )
            # The API's clone when it is on this disk, otherwise this builder's own checkout of its commit.
            repo_root = source_root(settings, repo).resolve()
            app_dir = app_dir_of(repo_root, deployment)
            made = generate_files(
                detection, app_dir, owner=owner, repo_name=deployment.repo_name,
                port_override=deployment.internal_port, cpus=deployment.cpu_limit, memory=deployment.memory_limit,
                repo_root=repo_root,
                use_repo_files=event.use_repo_dockerfile,
            )
            target_dir = made.app_dir or app_dir
            # What Portside writes must pass the same checks as a user's edit.
            found, _ = check_files(settings, made, target_dir, owner=owner, repo_root=repo_root)
            return made, found, write_files(repo_root, target_dir, made), app_dir, repo_root

        try:
            files, warnings, docker_path, app_dir, repo_root = await anyio.to_thread.run_sync(make)
        except (ValueError, OSError, PortsideError) as exc:
            if isinstance(exc, PortsideError):
                code, message = exc.code, exc.message
            else:
                # A ValueError here is SourceTree refusing an app path that leaves the repository.
                code = ErrorCode.PATH_OUTSIDE_REPOSITORY if isinstance(exc, ValueError) else ErrorCode.GENERATION_FAILED
                message = str(exc)
            await transition(session, deployment.id, S.ERROR, message, error_code=code)
            failure = GenerateFailed(correlation_id=event.correlation_id, deployment_id=deployment.id,
                                     error_code=code, message=message)
        else:
            used_dir = files.app_dir or app_dir
            app_path = used_dir.relative_to(repo_root).as_posix() if used_dir != app_dir else deployment.app_path
            summary = "; ".join(files.notes)
            await transition(
                session, deployment.id, S.READY,
                "Dockerfile and compose file generated" + (f". {summary}" if summary else ""),
                dockerfile_content=files.dockerfile, compose_content=files.compose,
                dockerignore_content=files.dockerignore, docker_path=str(docker_path),
                generated_secrets=seal_generated(settings, deployment.generated_secrets, files.compose),
                compose_files=files.compose_files, app_service=files.app_service, app_path=app_path,
                stack=detection.stack, framework=detection.framework,
                package_manager=detection.package_manager, confidence_score=detection.confidence,
                detected_db=detection.detected_db, internal_port=files.port,
            )
            for line in [*files.notes, *(f"hadolint: {w}" for w in warnings)]:
                await ctx.log(deployment.id, line)
        await session.commit()
    if failure:
        await ctx.publish(Subject.GENERATE_FAILED, failure)
    else:
        await ctx.publish(Subject.GENERATE_COMPLETED,
                          GenerateCompleted(correlation_id=event.correlation_id, deployment_id=event.deployment_id))

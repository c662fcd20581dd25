"""Runner business logic, the lifecycle: start a built deployment with docker compose and wait until it
answers; stop, delete, mark down. The engine calls are in engine.py, the readiness wait in readiness.py."""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
from nats.errors import Error as NatsError
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession

from services.runner import swarm
from services.runner.engine import (
    _address,
    _app_running,
    _port_conflict,
    _prune_images,
    _remove_containers,
    _serving,
    teardown,
)
from services.runner.ports import allocate_port
from services.runner.readiness import _wait_ready
from shared import proxy
from shared.checkout import source_root
from shared.config import Settings
from shared.db.models import Deployment, EnvVar, Release, Repository
from shared.db.repository import transition
from shared.db.status import DeploymentStatus as S
from shared.docker import Owner
from shared.docker.compose import run_compose
from shared.docker.resolved import Scope, interpolation_env, invocation, resolve_and_check
from shared.errors import ErrorCode, PortsideError
from shared.messaging.events import DeleteCompleted, RunCompleted, RunFailed, StopCompleted
from shared.messaging.outbox import stage
from shared.messaging.public import DeploymentDeleted
from shared.messaging.subjects import PublicSubject, Subject, logs_subject
from shared.secrets import deployment_env, open_generated
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

COMPOSE_FILE = Path(".deployment") / "docker-compose.yml"
PORT_RETRIES = 3
# Releases kept per deployment (rollback targets); their images may be pruned earlier (PORTSIDE_KEEP_IMAGES).
KEEP_RELEASES = 20


def _with_env(model_text: str, plan: StartPlan) -> str:
    """The checked model with the deployment's variables in the app service's environment. Compose
    interpolates the model it reads again, so a `$` in a value is written `$$`."""
    if not plan.env:
        return model_text
    model = json.loads(model_text)
    service = model.get("services", {}).get(plan.app_service)
    if service is None:
        return model_text
    environment = service.get("environment") or {}
    if isinstance(environment, list):  # compose config prints a mapping; a list would be KEY=VALUE
        environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    environment.update({key: value.replace("$", "$$") for key, value in plan.env.items()})
    service["environment"] = environment
    return json.dumps(model)


def _behind_proxy(model_text: str, plan: StartPlan) -> tuple[str, int | None]:
    """The model without the app's host port (the proxy listens there instead and follows the healthy container,
    so two versions can run side by side), and the port the app listens on inside its container."""
    model = json.loads(model_text)
    service = model.get("services", {}).get(plan.app_service)
    if service is None:
        return model_text, plan.internal_port
    targets = [int(p["target"]) for p in service.pop("ports", None) or [] if isinstance(p, dict) and p.get("target")]
    return json.dumps(model), targets[0] if targets else plan.internal_port


class StartFailure(PortsideError):
    """A start that failed, with the app's exit code when it had one."""

    def __init__(
        self, code: ErrorCode, message: str, exit_code: int | None = None, serving: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.exit_code = exit_code
        # Swarm rolled back by itself: the container of the previous version that kept serving.
        self.serving = serving


@dataclass(frozen=True)
class StartPlan:
    deployment_id: int
    repo_root: Path
    app_dir: Path
    compose_text: str
    compose_files: list[str]
    app_service: str
    image_tag: str
    port: int
    requested_port: int | None
    # The deployment's runtime variables (decrypted): added to the checked model handed to `up` on stdin, so
    # no value is ever written to a file.
    env: dict[str, str] = field(default_factory=dict)
    # The passwords Portside generated for the backing services (decrypted): Compose interpolates them.
    generated: dict[str, str] = field(default_factory=dict)
    # Behind the proxy: the app's port inside its container, and the running containers that keep serving
    # until the new one is healthy (empty on a first start).
    proxy: bool = False
    internal_port: int | None = None
    beside: frozenset[str] = frozenset()


async def run(ctx: WorkerContext, deployment_id: int, correlation_id: str, image_tag: str | None = None) -> None:
    """Start the deployment's latest image (or `image_tag`, for a rollback). Idempotent: a redelivered command
    finds the containers by label and compose converges to the same state. If a new image fails to become
    ready and an earlier one ran, that one is started again and the deployment says so."""
    settings = ctx.settings
    async with ctx.sessions() as session:
        result = await transition(session, deployment_id, S.STARTING, f"starting container (runner pid {os.getpid()})")
        if not result.applied and result.current != S.STARTING:
            log.info("run %s skipped: status is %s", deployment_id, result.current)
            return
        deployment = await session.get(Deployment, deployment_id)
        assert deployment is not None
        repo = await session.get(Repository, deployment.repository_id)
        assert repo is not None
        # A redeploy replaces a container that still listens on the deployment's port: that port is ours.
        own_container = await anyio.to_thread.run_sync(_app_running, settings, deployment_id, deployment.app_service)
        try:
            port = await allocate_port(
                session, settings, deployment_id,
                requested=deployment.requested_port, previous=deployment.assigned_port,
                previous_is_ours=own_container,
            )
        except PortsideError as exc:
            await transition(session, deployment_id, S.ERROR, exc.message, error_code=exc.code, assigned_port=None)
            await session.commit()
            await _fail(ctx, deployment_id, correlation_id, exc.code, exc.message)
            return
        await session.commit()
        plan = StartPlan(
            deployment_id=deployment_id,
            repo_root=Path(repo.path).resolve(),
            app_dir=(Path(repo.path) / deployment.app_path).resolve(),
            compose_text=deployment.compose_content or "",
            compose_files=list(deployment.compose_files or [str(COMPOSE_FILE)]),
            app_service=deployment.app_service or "app",
            image_tag=image_tag or deployment.image_tag or "",
            port=port,
            requested_port=deployment.requested_port,
        )
        fallback = deployment.running_image_tag
        variables = await deployment_env(session, settings, deployment_id)
        plan = replace(plan, env={v.key: v.value for v in variables if not v.build},
                       generated=open_generated(settings, deployment.generated_secrets))
        if settings.proxy_on:
            beside: frozenset[str] = frozenset()
            if deployment.upstream and own_container:
                beside = await anyio.to_thread.run_sync(_serving, settings, deployment_id, plan.app_service)
            plan = replace(plan, proxy=True, internal_port=deployment.internal_port, beside=beside)

    await ctx.log(deployment_id, f"starting {plan.image_tag} on port {port}")
    fallback_note = None
    try:
        plan = await _with_source(settings, plan, repo, deployment.app_path)
        plan, container_id = await _start(ctx, plan)
    except (StartFailure, PortsideError) as exc:
        failure = exc if isinstance(exc, StartFailure) else StartFailure(exc.code, exc.message)
        if plan.beside:
            await _keep_old(ctx, plan, failure, correlation_id)
            return
        recovered = None
        if fallback and failure.serving:
            await ctx.log(deployment_id, f"{plan.image_tag} failed ({failure.code}); the previous image {fallback} "
                                         "kept serving")
            recovered = replace(plan, image_tag=fallback), failure.serving
        elif fallback and fallback != plan.image_tag and failure.code in (ErrorCode.APP_CRASHED, ErrorCode.NOT_READY):
            await ctx.log(
                deployment_id, f"{plan.image_tag} failed ({failure.code}); starting the previous image {fallback} again"
            )
            try:
                recovered = await _start(ctx, replace(plan, image_tag=fallback))
            except (StartFailure, PortsideError) as again:
                # The deployment ends crashed below with the new image's failure; say why the old one didn't help.
                log.warning("deployment %s: the previous image %s failed too: %s", deployment_id, fallback, again)
                await ctx.log(deployment_id, f"the previous image {fallback} failed too: {again}")
                recovered = None
        if recovered is None:
            await _crash(ctx, plan.deployment_id, failure, correlation_id)
            return
        plan, container_id = recovered
        first_line = failure.message.splitlines()[0]
        fallback_note = (
            failure.code,
            f"The new image failed ({first_line}); the previous image {fallback} runs again.",
        )

    if plan.proxy:
        try:
            await _switch(ctx, plan, container_id)
        except PortsideError as exc:
            failure = StartFailure(exc.code, exc.message)
            if plan.beside:
                await _keep_old(ctx, plan, failure, correlation_id)
            else:
                await _crash(ctx, plan.deployment_id, failure, correlation_id)
            return
    url = settings.public_url(plan.port)
    async with ctx.sessions() as session:
        previous = fallback if fallback and fallback != plan.image_tag else None
        fields: dict = {"previous_image_tag": previous} if previous else {}
        moved = await transition(
            session, deployment_id, S.RUNNING,
            f"answering on {url}" + (f"; {fallback_note[1]}" if fallback_note else ""),
            container_id=container_id, started_at=func.now(), stopped_at=None, running_image_tag=plan.image_tag,
            error_code=fallback_note[0] if fallback_note else None,
            error_message=fallback_note[1] if fallback_note else None,
            exit_code=None, **fields,
        )
        if not moved.applied and moved.current != S.RUNNING:
            # Stopped (or given up on) while it started: compose may have started the app after the stop's own
            # teardown, and nothing may run for that status. The row stays locked until this teardown is done.
            await anyio.to_thread.run_sync(teardown, settings, deployment_id, False)
            await session.commit()
            message = f"The start ended after the deployment became {moved.current}; what it started was removed."
            await ctx.log(deployment_id, message)
            await _fail(ctx, deployment_id, correlation_id, ErrorCode.INVALID_STATE, message)
            return
        if fallback_note is None:  # after a fallback, the files in Postgres are the failed version's
            await _record_release(session, deployment_id, plan.image_tag)
        await session.commit()
        keep = {plan.image_tag, previous}
    await ctx.log(deployment_id, f"running at {url}")
    await anyio.to_thread.run_sync(_prune_images, settings, deployment_id, {k for k in keep if k})
    await ctx.publish(Subject.RUN_COMPLETED, RunCompleted(
        correlation_id=correlation_id, deployment_id=deployment_id, container_id=container_id, port=plan.port, url=url))


async def _with_source(settings: Settings, plan: StartPlan, repo: Repository, app_path: str) -> StartPlan:
    """The plan on this runner's copy of the source, which Compose reads (the repository's own compose files,
    env files, bind-mount sources): the API's clone when it is on this disk, otherwise this runner's checkout of
    the registered commit (shared/checkout.py). Raises what the fetch raised (GIT_CLONE_FAILED, REPO_NOT_FOUND)."""
    root = (await anyio.to_thread.run_sync(source_root, settings, repo)).resolve()
    return replace(plan, repo_root=root, app_dir=(root / app_path).resolve())


async def _start(ctx: WorkerContext, plan: StartPlan) -> tuple[StartPlan, str]:
    """compose up (moving to another port if the chosen one was grabbed meanwhile), then wait until the app
    answers. Returns the plan actually used and the app container id; raises StartFailure."""
    settings = ctx.settings
    if not plan.app_dir.is_dir():
        raise PortsideError(ErrorCode.REPO_NOT_FOUND, f"The app directory {plan.app_dir} no longer exists.")
    if plan.app_dir != plan.repo_root and plan.repo_root not in plan.app_dir.parents:
        raise PortsideError(
            ErrorCode.PATH_OUTSIDE_REPOSITORY, "The app directory leads out of the repository (a symlink)."
        )
    # Portside's compose file goes in through stdin from Postgres (the user's edits included), so two
    # deployments of one directory never race on the file; relative paths resolve from where it lives.
    files, project_dir = invocation(plan.app_dir, plan.compose_files)
    owner = Owner.of(settings, plan.deployment_id)
    for attempt in range(PORT_RETRIES):
        env = interpolation_env(settings, plan.image_tag, plan.port, plan.generated)
        scope = Scope.of(settings, owner, plan.repo_root, plan.app_service, plan.port)
        # What runs is the model just checked, handed to `up` whole: nothing is read or interpolated again.
        checked = await anyio.to_thread.run_sync(functools.partial(
            resolve_and_check, settings, scope, files, project_dir, env, stdin=plan.compose_text))
        for warning in checked.warnings if attempt == 0 else []:
            await ctx.log(plan.deployment_id, warning)
        if settings.engine == "swarm":
            edge = (await anyio.to_thread.run_sync(swarm.ensure_edge_image, settings)
                    if swarm.uses_edge(settings) else None)
            stack, left_out = swarm.render_stack(
                json.loads(_with_env(checked.text(), plan)), settings, owner, plan.app_service, edge)
            for warning in left_out if attempt == 0 else []:
                await ctx.log(plan.deployment_id, warning)
            up = await anyio.to_thread.run_sync(swarm.deploy_stack, settings, owner, json.dumps(stack))
        else:
            model = _with_env(checked.text(), plan)
            args = ["up", "-d", "--no-build", "--remove-orphans"]
            if plan.proxy:
                model, internal_port = _behind_proxy(model, plan)
                if internal_port is None:
                    raise StartFailure(ErrorCode.START_FAILED, f"The app service {plan.app_service} names no port; "
                                       "the proxy needs one: add `ports` or set internal_port when generating.")
                plan = replace(plan, internal_port=internal_port)
                if plan.beside:
                    # The old containers stay as they are; compose adds one with the new image and configuration.
                    args = ["up", "-d", "--no-build", "--no-recreate", "--scale",
                            f"{plan.app_service}={len(plan.beside) + 1}"]
            up = await anyio.to_thread.run_sync(functools.partial(
                run_compose, settings, owner.project, ["-"], args,
                env=env, project_dir=project_dir, stdin=model, clean_env=True,
            ))
        if up.ok:
            break
        if _port_conflict(up) and attempt + 1 < PORT_RETRIES and plan.requested_port is None:
            # Another process took the port between our check and Docker's bind: pick another one.
            await ctx.log(plan.deployment_id, f"port {plan.port} was taken meanwhile; trying another")
            async with ctx.sessions() as session:
                port = await allocate_port(session, settings, plan.deployment_id, exclude=frozenset({plan.port}))
                await session.commit()
            plan = replace(plan, port=port)
            continue
        if "non-overlapping IPv4 address pool" in up.stderr:
            raise StartFailure(
                ErrorCode.NETWORK_POOL_EXHAUSTED,
                "Docker has no address range left for another network (its default pools hold about 30). "
                "Stop unused deployments, or give dockerd more with `default-address-pools` in daemon.json "
                "(scripts/ensure-docker.sh starts it with base=10.213.0.0/16,size=24).",
            )
        code = ErrorCode.PORT_IN_USE if _port_conflict(up) else ErrorCode.START_FAILED
        what = "docker stack deploy" if settings.engine == "swarm" else "docker compose up"
        raise StartFailure(code, f"{what} failed: {up.stderr.strip()[-2000:]}")
    if settings.engine == "swarm":
        return plan, await _converged(ctx, plan, owner)
    container_id, exit_code, tail = await _wait_ready(
        ctx, plan.deployment_id, plan.port, plan.app_service,
        internal_port=plan.internal_port if plan.proxy else None, beside=plan.beside,
    )
    if exit_code is not None or container_id is None:
        raise StartFailure(
            ErrorCode.APP_CRASHED if exit_code is not None else ErrorCode.NOT_READY,
            (f"The app exited with code {exit_code} before answering on its port."
             if exit_code is not None else
             f"The app did not answer HTTP on port {plan.internal_port if plan.proxy else plan.port} (or its "
             f"HEALTHCHECK was not healthy) within {settings.ready_timeout_seconds:.0f} s; "
             "check that it listens on 0.0.0.0 and on $PORT.")
            + ("\nLast lines:\n" + "\n".join(tail) if tail else ""),
            exit_code,
        )
    return plan, container_id


async def _converged(ctx: WorkerContext, plan: StartPlan, owner: Owner) -> str:
    """Swarm: wait until the app's service runs the new image on every replica (health-gated by Swarm), or
    Swarm rolled it back by itself. Returns a running task's container id; raises StartFailure."""
    settings = ctx.settings
    done = await anyio.to_thread.run_sync(swarm.wait_converged, settings, owner, plan.app_service, plan.image_tag)
    if done.container_id is not None:
        return done.container_id
    tail = ("\nLast lines:\n" + "\n".join(done.tail)) if done.tail else ""
    if done.failure == "timeout":
        raise StartFailure(ErrorCode.NOT_READY, (
            f"The app's tasks did not pass their health check (HTTP on its port, from inside the task) within "
            f"{settings.ready_timeout_seconds:.0f} s; check that it listens on 0.0.0.0 and on $PORT.") + tail)
    if done.rolled_back:
        await ctx.log(plan.deployment_id, f"{done.failure}; the previous version kept serving")
    code = ErrorCode.APP_CRASHED if done.exit_code not in (None, 0) else ErrorCode.NOT_READY
    raise StartFailure(code, f"{done.failure}" + tail, done.exit_code,
                       serving=done.serving if done.rolled_back else None)


async def _switch(ctx: WorkerContext, plan: StartPlan, container_id: str) -> None:
    """Point the proxy (domains and host port) at the new healthy container, then let the old ones finish
    what they serve for `drain_seconds` and remove them. Raises PortsideError(PROXY_FAILED) before the switch."""
    settings = ctx.settings
    address = await anyio.to_thread.run_sync(_address, settings, container_id)
    if not address:
        raise PortsideError(ErrorCode.START_FAILED, "The new container has no network address for the proxy.")
    async with ctx.sessions() as session:
        await session.execute(sa_update(Deployment).where(Deployment.id == plan.deployment_id).values(
            upstream=f"{address}:{plan.internal_port}", container_id=container_id))
        await session.commit()
        await proxy.apply(session, settings)
    if not plan.beside:
        return
    await ctx.log(plan.deployment_id, f"the proxy now sends requests to the new container; the old one drains "
                                      f"for {settings.drain_seconds:g} s")
    await anyio.sleep(settings.drain_seconds)
    await anyio.to_thread.run_sync(_remove_containers, settings, plan.deployment_id, plan.app_service,
                                   frozenset({container_id}))


async def _keep_old(ctx: WorkerContext, plan: StartPlan, failure: StartFailure, correlation_id: str) -> None:
    """A new version that never got healthy never got traffic: remove it, route to the old one (again), and end
    `running` on the old version with the new one's error code."""
    settings = ctx.settings
    await anyio.to_thread.run_sync(_remove_containers, settings, plan.deployment_id, plan.app_service, plan.beside)
    first_line = failure.message.splitlines()[0]
    message = f"The new version {plan.image_tag} did not become healthy ({first_line}); the previous one keeps serving."
    async with ctx.sessions() as session:
        deployment = await session.get(Deployment, plan.deployment_id)
        assert deployment is not None
        old = next(iter(plan.beside))
        address = await anyio.to_thread.run_sync(_address, settings, old)
        upstream = f"{address}:{plan.internal_port}" if address else deployment.upstream
        await transition(session, plan.deployment_id, S.RUNNING, message, error_code=failure.code,
                         error_message=message, exit_code=failure.exit_code, container_id=old, upstream=upstream)
        await session.commit()
    await _route(ctx)
    await ctx.log(plan.deployment_id, message)
    await _fail(ctx, plan.deployment_id, correlation_id, failure.code, message)


async def _route(ctx: WorkerContext) -> None:
    """Apply the proxy's routes from Postgres after a status change; a failure is logged, and the reconciler's
    next pass applies them again."""
    if not ctx.settings.proxy_on:
        return
    try:
        async with ctx.sessions() as session:
            await proxy.apply(session, ctx.settings)
    except PortsideError as exc:
        log.warning("proxy routes not applied: %s", exc.message)


async def _record_release(session: AsyncSession, deployment_id: int, image_tag: str) -> None:
    """Keep what just started (image, files, limits, encrypted variables) for a rollback to restore."""
    deployment = await session.get(Deployment, deployment_id)
    assert deployment is not None
    variables = (await session.scalars(select(EnvVar).where(EnvVar.deployment_id == deployment_id))).all()
    session.add(Release(
        deployment_id=deployment_id, image_tag=image_tag, dockerfile_content=deployment.dockerfile_content,
        compose_content=deployment.compose_content, dockerignore_content=deployment.dockerignore_content,
        cpu_limit=deployment.cpu_limit, memory_limit=deployment.memory_limit,
        env=[{"key": v.key, "value_encrypted": base64.b64encode(v.value_encrypted).decode(), "secret": v.secret,
              "build": v.build} for v in variables],
    ))
    await session.flush()
    kept = select(Release.id).where(Release.deployment_id == deployment_id).order_by(Release.id.desc()).limit(
        KEEP_RELEASES)
    await session.execute(sa_delete(Release).where(Release.deployment_id == deployment_id, Release.id.not_in(kept)))


async def _crash(ctx: WorkerContext, deployment_id: int, failure: StartFailure, correlation_id: str) -> None:
    """Take everything down (the port is freed with the status) and say why."""
    await anyio.to_thread.run_sync(teardown, ctx.settings, deployment_id, False)
    async with ctx.sessions() as session:
        # `crashed` is the app's own doing; anything else (engine, network, port, files) is an `error`.
        target = S.CRASHED if failure.code in (ErrorCode.APP_CRASHED, ErrorCode.NOT_READY) else S.ERROR
        await transition(
            session, deployment_id, target, failure.message, error_code=failure.code, exit_code=failure.exit_code,
            upstream=None,
        )
        await session.commit()
    await _route(ctx)
    await ctx.log(deployment_id, failure.message.splitlines()[0])
    await _fail(ctx, deployment_id, correlation_id, failure.code, failure.message)


async def mark_down(
    ctx: WorkerContext, deployment_id: int, seen: S, to: S, message: str, code: ErrorCode,
    exit_code: int | None = None,
) -> bool:
    """Move a deployment that is still in `seen` (the status its evidence was read against) to a failure status
    and take its containers down before anyone can read that status: the guarded UPDATE holds the row until the
    teardown is done and the transaction commits. False when the status had moved on (another replica, a stop, a
    redeploy that reached `starting` meanwhile), in which case nothing is touched."""
    async with ctx.sessions() as session:
        result = await transition(session, deployment_id, to, message, error_code=code, exit_code=exit_code,
                                  only_from=frozenset({seen}), upstream=None)
        if result.applied:
            await anyio.to_thread.run_sync(teardown, ctx.settings, deployment_id, False)
        await session.commit()
    if result.applied:
        await _route(ctx)
    return result.applied


async def _fail(ctx: WorkerContext, deployment_id: int, correlation_id: str, code: str, message: str) -> None:
    await ctx.publish(Subject.RUN_FAILED, RunFailed(
        correlation_id=correlation_id, deployment_id=deployment_id, error_code=code, message=message))


async def stop(ctx: WorkerContext, deployment_id: int, correlation_id: str) -> None:
    async with ctx.sessions() as session:
        result = await transition(session, deployment_id, S.STOPPING, "stopping")
        if not result.applied and result.current != S.STOPPING:
            if result.current == S.STOPPED:  # redelivery: already done
                await ctx.publish(
                    Subject.STOP_COMPLETED, StopCompleted(correlation_id=correlation_id, deployment_id=deployment_id)
                )
            return
        await session.commit()
    await anyio.to_thread.run_sync(teardown, ctx.settings, deployment_id, False)
    async with ctx.sessions() as session:
        await transition(session, deployment_id, S.STOPPED, "stopped; port released",
                         stopped_at=func.now(), container_id=None, upstream=None)
        await session.commit()
    await _route(ctx)
    await ctx.log(deployment_id, "stopped")
    await ctx.publish(Subject.STOP_COMPLETED, StopCompleted(correlation_id=correlation_id, deployment_id=deployment_id))


async def delete(ctx: WorkerContext, deployment_id: int, purge: bool, correlation_id: str) -> None:
    """Remove containers, network, images (and volumes with `purge`), the logs, then the row."""
    await anyio.to_thread.run_sync(teardown, ctx.settings, deployment_id, purge)
    await anyio.to_thread.run_sync(_prune_images, ctx.settings, deployment_id, set(), 0)
    js = ctx.broker.config.connection_state.stream
    try:
        await js.purge_stream(ctx.settings.logs_stream_name, subject=logs_subject(deployment_id))
    except NatsError as exc:  # the row goes anyway; its lines age out with the stream's max_age
        log.warning("deployment %s: its log lines were not purged (%s); they expire with the logs stream",
                    deployment_id, exc)
    async with ctx.sessions() as session:
        gone = (await session.execute(
            sa_delete(Deployment).where(Deployment.id == deployment_id)
            .returning(Deployment.owner_id, Deployment.repository_id, Deployment.repo_name)
        )).first()
        if gone is not None:  # a redelivered delete finds no row and publishes nothing again
            await stage(session, PublicSubject.DEPLOYMENT_DELETED, DeploymentDeleted(
                deployment_id=deployment_id, repository_id=gone.repository_id, repo_name=gone.repo_name,
                owner_id=gone.owner_id, purged=purge,
            ))
        await session.commit()
    await _route(ctx)
    await ctx.publish(
        Subject.DELETE_COMPLETED, DeleteCompleted(correlation_id=correlation_id, deployment_id=deployment_id)
    )

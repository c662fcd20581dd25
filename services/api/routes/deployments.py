from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

import anyio
from docker.errors import DockerException
from fastapi import APIRouter, Body, Query, Request, Response
from requests import RequestException
from sqlalchemy import select

from services.api import service
from services.api.auth import audit, can_see
from services.api.deps import BusDep, CurrentUser, IdPath, SessionDep, SettingsDep, WriterUser
from services.api.schemas import (
    AppMetricsPublic,
    DeploymentPublic,
    DeploymentSummary,
    DeployResult,
    DetectRequest,
    Envelope,
    EventPublic,
    FilesUpdate,
    GenerateRequest,
    GenerateResult,
    ReleasePublic,
    ServiceUsage,
    StatusPublic,
    UsageSample,
)
from shared import proxy
from shared.config import Settings
from shared.db.models import AppSample, Deployment, DeploymentEvent, Release
from shared.db.status import DeploymentStatus as S
from shared.detection import Detection
from shared.docker import Owner, docker_client
from shared.docker.containers import app_container, app_task_state, container_stats
from shared.errors import ErrorCode, PortsideError
from shared.secrets import mask_compose, redact, secret_values, unmask_compose

router = APIRouter(prefix="/api/deployments", tags=["deployments"])


def _url(settings: Settings, deployment: Deployment) -> str | None:
    if deployment.assigned_port is None or deployment.status != S.RUNNING:
        return None
    return settings.public_url(deployment.assigned_port)


@router.post("/detect/{repo_id}", response_model=Envelope[Detection])
async def detect(
    repo_id: IdPath, user: WriterUser, session: SessionDep, bus: BusDep,
    body: Annotated[DetectRequest | None, Body()] = None,
    app_path: Annotated[str | None, Query(description="subdirectory of the repository (monorepos)")] = None,
) -> Envelope[Detection]:
    """Detect the stack; the detector answers over NATS (WORKER_TIMEOUT if none does)."""
    path = app_path if app_path is not None else (body.app_path if body else "")
    return Envelope(data=await service.detect(session, bus, repo_id, path, user))


@router.post("/generate/{repo_id}", response_model=Envelope[GenerateResult])
async def generate(
    repo_id: IdPath, user: WriterUser, session: SessionDep, bus: BusDep, settings: SettingsDep,
    body: Annotated[GenerateRequest | None, Body()] = None,
) -> Envelope[GenerateResult]:
    """Create a deployment and generate its Dockerfile, compose file and .dockerignore. `port` is the host port
    the app will be published on (PORT_IN_USE / PORT_OUT_OF_RANGE when it can't be had), `internal_port` the
    port it listens on in the container."""
    body = body or GenerateRequest()
    deployment = await service.generate(
        session, bus, settings, repo_id, app_path=body.app_path, stack=body.stack, port=body.requested_host_port,
        internal_port=body.internal_port, cpu_limit=body.cpu_limit, memory_limit=body.memory_limit, user=user,
        use_repo_dockerfile=body.use_repo_dockerfile,
    )
    return Envelope(data=GenerateResult(
        deployment_id=deployment.id, dockerfile=deployment.dockerfile_content or "",
        compose=mask_compose(deployment.compose_content) or "", dockerignore=deployment.dockerignore_content,
        docker_path=deployment.docker_path,
    ))


@router.get("", response_model=Envelope[list[DeploymentSummary]])
async def list_deployments(
    user: CurrentUser, session: SessionDep, repo_id: Annotated[int | None, Query(ge=1, le=2**62)] = None
) -> Envelope[list[DeploymentSummary]]:
    query = select(Deployment).order_by(Deployment.id)
    if not can_see(user, None):
        query = query.where(Deployment.owner_id == user.id)
    if repo_id is not None:
        query = query.where(Deployment.repository_id == repo_id)
    rows = (await session.scalars(query)).all()
    return Envelope(data=[DeploymentSummary.model_validate(d) for d in rows])


@router.get("/{deployment_id}", response_model=Envelope[DeploymentPublic])
async def get_deployment(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Envelope[DeploymentPublic]:
    deployment = await service.get_deployment(session, deployment_id, user)
    secrets = await secret_values(session, settings, deployment_id)
    domains = await proxy.domains_of(session, settings, deployment)
    data = DeploymentPublic.model_validate(deployment).model_copy(update={
        "url": _url(settings, deployment), "compose_content": mask_compose(deployment.compose_content),
        "domains": domains, "urls": proxy.domain_urls(settings, domains) if settings.proxy_on else [],
        "error_message": redact(deployment.error_message, secrets) if deployment.error_message else None,
    })
    return Envelope(data=data)


@router.put("/{deployment_id}/files", response_model=Envelope[dict])
async def put_files(
    deployment_id: IdPath, body: FilesUpdate, request: Request, user: WriterUser, session: SessionDep,
    settings: SettingsDep,
) -> Envelope[dict]:
    """Save edited files after validating them: syntax, hadolint (errors block, warnings are returned),
    the security policy. A refusal is a 422 with an error_code and the offending line. Passwords shown
    masked may be sent back masked: an unchanged masked line keeps its saved value."""
    compose = body.compose
    if compose is not None:
        deployment = await service.get_deployment(session, deployment_id, user)
        try:
            compose = unmask_compose(compose, deployment.compose_content)
        except ValueError as exc:
            raise PortsideError(ErrorCode.VALIDATION_ERROR, f"compose: {exc}.") from exc
    warnings = await service.save_files(session, settings, deployment_id, body.dockerfile, compose, user,
                                        dockerignore=body.dockerignore)
    edited = (("Dockerfile", body.dockerfile), ("compose", body.compose), (".dockerignore", body.dockerignore))
    await audit(session, request, user, "files_edited", f"deployment:{deployment_id}",
                ", ".join(n for n, v in edited if v is not None))
    await session.commit()
    return Envelope(data={"saved": True, "warnings": warnings})


async def _deploy_result(session: SessionDep, settings: Settings, deployment: Deployment) -> DeployResult:
    message = deployment.error_message
    if message:
        message = redact(message, await secret_values(session, settings, deployment.id))
    return DeployResult(
        deployment_id=deployment.id, status=deployment.status, container_id=deployment.container_id,
        port=deployment.assigned_port, url=_url(settings, deployment),
        error_code=deployment.error_code, error_message=message,
    )


@router.post("/{deployment_id}/deploy", response_model=Envelope[DeployResult], status_code=202)
async def deploy(
    deployment_id: IdPath, request: Request, user: WriterUser, session: SessionDep, bus: BusDep, settings: SettingsDep,
    response: Response,
    wait: Annotated[bool, Query(description="answer when the app runs or failed, not when queued")] = False,
) -> Envelope[DeployResult]:
    """Build the image and start the app. 202 while in progress; with ?wait=true, 200 with the outcome."""
    await service.get_deployment(session, deployment_id, user)
    await request.app.state.limiter.hit(f"deploy:{user.id}", settings.deploys_per_minute, "deploys")
    await audit(session, request, user, "deploy", f"deployment:{deployment_id}")
    await session.commit()
    deployment = await service.deploy(session, bus, deployment_id, wait=wait, user=user)
    if wait:
        response.status_code = 200
    return Envelope(data=await _deploy_result(session, settings, deployment))


@router.post("/{deployment_id}/stop", response_model=Envelope[DeployResult], status_code=202)
async def stop(
    deployment_id: IdPath, request: Request, user: WriterUser, session: SessionDep, bus: BusDep, settings: SettingsDep,
    response: Response, wait: Annotated[bool, Query()] = False,
) -> Envelope[DeployResult]:
    """Stop and remove the containers and free the port."""
    await service.get_deployment(session, deployment_id, user)
    await audit(session, request, user, "stop", f"deployment:{deployment_id}")
    await session.commit()
    deployment = await service.stop(session, bus, deployment_id, wait=wait, user=user)
    if wait or deployment.status == S.STOPPED:
        response.status_code = 200
    return Envelope(data=await _deploy_result(session, settings, deployment))


@router.post("/{deployment_id}/cancel", response_model=Envelope[DeployResult])
async def cancel(
    deployment_id: IdPath, request: Request, user: WriterUser, session: SessionDep, settings: SettingsDep,
) -> Envelope[DeployResult]:
    """Cancel a queued or running build: 200 with status `build_failed` and error_code BUILD_CANCELLED; the builder
    kills the build's container within a second or two. 409 INVALID_STATE when no build is queued or running."""
    await service.get_deployment(session, deployment_id, user)
    await audit(session, request, user, "cancel", f"deployment:{deployment_id}")
    await session.commit()
    deployment = await service.cancel(session, deployment_id, user=user)
    return Envelope(data=await _deploy_result(session, settings, deployment))


@router.post("/{deployment_id}/rollback", response_model=Envelope[DeployResult], status_code=202)
async def rollback(
    deployment_id: IdPath, request: Request, user: WriterUser, session: SessionDep, bus: BusDep, settings: SettingsDep,
    response: Response, wait: Annotated[bool, Query()] = False,
    release_id: Annotated[int | None, Query(ge=1, le=2**62, description="a release from GET .../releases")] = None,
) -> Envelope[DeployResult]:
    """Run an earlier successful image again (no build) with the configuration it ran with: files, limits and
    variables. The previous one by default, or `release_id`. 409 NO_PREVIOUS_IMAGE when there is none, 404
    RELEASE_NOT_FOUND for a release that is not this deployment's."""
    await service.get_deployment(session, deployment_id, user)
    await request.app.state.limiter.hit(f"deploy:{user.id}", settings.deploys_per_minute, "deploys")
    await audit(session, request, user, "rollback", f"deployment:{deployment_id}")
    await session.commit()
    deployment = await service.rollback(session, bus, deployment_id, wait=wait, user=user, release_id=release_id)
    if wait:
        response.status_code = 200
    return Envelope(data=await _deploy_result(session, settings, deployment))


@router.get("/{deployment_id}/releases", response_model=Envelope[list[ReleasePublic]])
async def releases(deployment_id: IdPath, user: CurrentUser, session: SessionDep) -> Envelope[list[ReleasePublic]]:
    """What ran after each successful start, newest first: a rollback target (variable names only, no values)."""
    await service.get_deployment(session, deployment_id, user)
    rows = (await session.scalars(
        select(Release).where(Release.deployment_id == deployment_id).order_by(Release.id.desc())
    )).all()
    return Envelope(data=[
        ReleasePublic(id=r.id, image_tag=r.image_tag, created_at=r.created_at, cpu_limit=r.cpu_limit,
                      memory_limit=r.memory_limit, env_keys=sorted(v["key"] for v in r.env))
        for r in rows
    ])


@router.delete("/{deployment_id}", response_model=Envelope[dict])
async def delete(
    deployment_id: IdPath, request: Request, user: WriterUser, session: SessionDep, bus: BusDep,
    purge: Annotated[bool, Query(description="also remove the deployment's volumes (database data)")] = False,
) -> Envelope[dict]:
    """Stop the deployment and remove everything Portside created for it; volumes only with ?purge=true."""
    await service.get_deployment(session, deployment_id, user)
    await audit(session, request, user, "delete", f"deployment:{deployment_id}", "purge" if purge else None)
    await session.commit()
    await service.delete(session, bus, deployment_id, purge, user)
    return Envelope(data={"deleted": True, "purged": purge})


@router.get("/{deployment_id}/status", response_model=Envelope[StatusPublic])
async def status(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Envelope[StatusPublic]:
    """The status in Postgres plus live figures read from the engine (CPU, memory, network, uptime)."""
    deployment = await service.get_deployment(session, deployment_id, user)
    data = StatusPublic(
        deployment_id=deployment.id, status=deployment.status, container_id=deployment.container_id,
        port=deployment.assigned_port, url=_url(settings, deployment),
    )

    def read_engine() -> StatusPublic:
        client = docker_client(settings, timeout=10)
        try:
            owner = Owner.of(settings, deployment.id)
            container = app_container(client, owner, deployment.app_service)
            task = app_task_state(client, owner) if settings.engine == "swarm" else None
            # Swarm: the engine reports CPU, memory and network only for containers on its own node; say where
            # the other tasks run instead of leaving them out.
            where = {"task_nodes": task.nodes} if task is not None else {}
            elsewhere = ", ".join(f"{n} ({c})" for n, c in task.elsewhere.items()) if task is not None else ""
            if container is None:
                if task is not None:
                    return data.model_copy(update={
                        "container_id": task.container_id, "container_state": task.state, **where,
                        "engine_error": f"{task.running} of {task.desired} tasks running, on {elsewhere or 'no node'};"
                                        f" none on this node ({task.this_node}), and the engine reports CPU, memory "
                                        "and network only for its own node's containers: no figures.",
                    })
                return data
            stats = container_stats(container)
            return data.model_copy(update={
                "container_id": container.id, "container_state": stats.state, "health": stats.health,
                "uptime_seconds": stats.uptime_seconds, "cpu_percent": stats.cpu_percent,
                "memory_mb": stats.memory_mb, "memory_limit_mb": stats.memory_limit_mb,
                "network_rx_bytes": stats.network_rx_bytes, "network_tx_bytes": stats.network_tx_bytes,
                "ip_address": stats.ip_address, "ports": stats.ports, **where,
                **({"engine_error": f"The figures are of one task on this node ({task.this_node}); more run on "
                                    f"{elsewhere}, with no figures."} if task is not None and elsewhere else {}),
            })
        finally:
            client.close()

    try:
        data = await anyio.to_thread.run_sync(read_engine)
    except PortsideError as exc:
        data = data.model_copy(update={"engine_error": exc.message})
    except (DockerException, RequestException, ValueError) as exc:
        # The container went away while being read (a deployment stopping): the status still answers, from Postgres.
        data = data.model_copy(update={"engine_error": f"The engine could not describe the container just now "
                                                       f"({exc.__class__.__name__}); ask again in a moment."})
    return Envelope(data=data)


@router.get("/{deployment_id}/events", response_model=Envelope[list[EventPublic]])
async def events(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Envelope[list[EventPublic]]:
    """The deployment's timeline: every status change with its time and reason."""
    await service.get_deployment(session, deployment_id, user)
    rows = (await session.scalars(
        select(DeploymentEvent).where(DeploymentEvent.deployment_id == deployment_id).order_by(DeploymentEvent.id)
    )).all()
    secrets = await secret_values(session, settings, deployment_id)
    return Envelope(data=[
        EventPublic.model_validate(e).model_copy(
            update={"message": redact(e.message, secrets) if e.message else e.message}
        )
        for e in rows
    ])


@router.get("/{deployment_id}/metrics", response_model=Envelope[AppMetricsPublic])
async def app_metrics(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    since: Annotated[datetime | None, Query(description="only samples taken after this time (ISO 8601; UTC when "
                                                        "no offset is given)")] = None,
) -> Envelope[AppMetricsPublic]:
    """CPU, memory and network of every service of the app, sampled by the runner every
    PORTSIDE_METRICS_INTERVAL_SECONDS, oldest first, per service and summed: for charts."""
    await service.get_deployment(session, deployment_id, user)
    query = select(AppSample).where(AppSample.deployment_id == deployment_id)
    if since is not None:
        query = query.where(AppSample.sampled_at > as_utc(since))
    rows = (await session.scalars(query.order_by(AppSample.sampled_at, AppSample.service))).all()
    rounds: dict[datetime, dict[str, ServiceUsage]] = {}
    for row in rows:
        rounds.setdefault(row.sampled_at, {})[row.service] = ServiceUsage(
            cpu_percent=row.cpu_percent, memory_mb=row.memory_mb,
            network_rx_bytes=row.network_rx_bytes, network_tx_bytes=row.network_tx_bytes,
        )
    samples = [UsageSample(at=at, services=services, total=usage_sum(services.values()))
               for at, services in rounds.items()]
    return Envelope(data=AppMetricsPublic(
        deployment_id=deployment_id, interval_seconds=settings.metrics_interval_seconds, samples=samples
    ))


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC (a naive one is taken as UTC); one beyond datetime's range once converted (year 1
    with a positive offset, 9999 with a negative one) becomes the earliest or latest moment."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return (datetime.min if moment.year == datetime.min.year else datetime.max).replace(tzinfo=UTC)


def usage_sum(usages: Iterable[ServiceUsage]) -> ServiceUsage:
    """The services summed, field by field; a field no service reported stays None."""
    total: dict[str, float | int | None] = dict.fromkeys(ServiceUsage.model_fields)
    for usage in usages:
        for name, value in usage.model_dump().items():
            if value is not None:
                total[name] = (total[name] or 0) + value
    if total["cpu_percent"] is not None:
        total["cpu_percent"] = round(float(total["cpu_percent"]), 2)
    if total["memory_mb"] is not None:
        total["memory_mb"] = round(float(total["memory_mb"]), 2)
    return ServiceUsage.model_validate(total)

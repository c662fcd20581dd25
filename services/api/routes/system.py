"""The API's own /metrics (Prometheus text): PORTSIDE_METRICS_TOKEN as a bearer token, or an admin's token.
/healthz and /readyz come from shared/observe.py like every service's."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.auth import bearer, require_admin, unauthorized, user_from_token
from shared import metrics
from shared.db.models import Deployment
from shared.db.status import DeploymentStatus
from shared.observe import metrics_body, metrics_token_ok

router = APIRouter(tags=["system"])


@router.get(
    "/metrics", response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def api_metrics(request: Request) -> Response:
    """Prometheus metrics of the API process; send PORTSIDE_METRICS_TOKEN or an admin's token as the bearer."""
    if not metrics_token_ok(request, request.app.state.settings):
        token = bearer(request)
        if not token:
            raise unauthorized("Send `Authorization: Bearer <PORTSIDE_METRICS_TOKEN>` or an admin's token.")
        async with request.app.state.sessions() as session:
            require_admin(await user_from_token(request, session, token))
    return await metrics_body(request.app.state.readiness)


async def count_deployments(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Deployments by status, every status present (a status nobody is in reads 0, not missing)."""
    async with sessions() as session:
        rows = (await session.execute(select(Deployment.status, func.count()).group_by(Deployment.status))).all()
    counts = {status: 0 for status in DeploymentStatus} | {status: count for status, count in rows}
    for status, count in counts.items():
        metrics.DEPLOYMENTS.labels(str(status)).set(count)

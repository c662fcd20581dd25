"""Logs are served by the logstream service; the API relays them so clients need one address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from services.api import service
from services.api.deps import SessionDep, SettingsDep
from services.api.schemas import Envelope
from shared.config import Settings
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/deployments", tags=["logs"])


def _base(settings: Settings) -> str:
    return f"http://{settings.logstream_host}:{settings.logstream_port}"


def _unavailable(settings: Settings, exc: Exception) -> PortsideError:
    return PortsideError(
        ErrorCode.LOGSTREAM_UNAVAILABLE,
        f"The logstream service at {_base(settings)} does not answer ({exc.__class__.__name__}); "
        "`portside up` starts it.",
    )


@router.get("/{deployment_id}/logs", response_model=Envelope[dict])
async def logs(
    deployment_id: int, session: SessionDep, settings: SettingsDep,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Envelope[dict]:
    """The last `lines` lines of build and app output."""
    await service.get_deployment(session, deployment_id)
    try:
        async with httpx.AsyncClient(base_url=_base(settings), timeout=30) as client:
            resp = await client.get(f"/deployments/{deployment_id}/logs", params={"lines": lines})
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise _unavailable(settings, exc) from exc
    return Envelope(data=resp.json())


@router.get("/{deployment_id}/logs/stream")
async def stream(
    deployment_id: int, request: Request, session: SessionDep, settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: every build and app line (one event each), then new ones as they come.
    Reconnect with Last-Event-ID to continue without gaps."""
    await service.get_deployment(session, deployment_id)
    await session.close()  # do not hold a pooled connection for the life of the stream
    client = httpx.AsyncClient(base_url=_base(settings), timeout=httpx.Timeout(10, read=None))
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    try:
        upstream = await client.send(
            client.build_request("GET", f"/deployments/{deployment_id}/logs/stream", headers=headers), stream=True
        )
    except httpx.HTTPError as exc:
        await client.aclose()
        raise _unavailable(settings, exc) from exc

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()
            await client.aclose()

    return StreamingResponse(
        relay(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )

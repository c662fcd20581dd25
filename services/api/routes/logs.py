"""Logs are served by the logstream service; the API relays them so clients need one address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import httpx
from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from services.api import service
from services.api.auth import bearer, unauthorized, user_from_token
from services.api.deps import CurrentUser, IdPath, SessionDep, SettingsDep
from services.api.schemas import Envelope
from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.secrets import INTERNAL_HEADER, internal_key

router = APIRouter(prefix="/api/deployments", tags=["logs"])


def _base(settings: Settings) -> str:
    return f"http://{settings.logstream_host}:{settings.logstream_port}"


def _client(settings: Settings, timeout: httpx.Timeout | float) -> httpx.AsyncClient:
    """A client for the logstream service, carrying the key that says the API checked the caller."""
    headers = {INTERNAL_HEADER: internal_key(settings)}
    return httpx.AsyncClient(base_url=_base(settings), timeout=timeout, headers=headers)


def _unavailable(settings: Settings, exc: Exception) -> PortsideError:
    return PortsideError(
        ErrorCode.LOGSTREAM_UNAVAILABLE,
        f"The logstream service at {_base(settings)} does not answer ({exc.__class__.__name__}); "
        "`portside up` starts it.",
    )


@router.get("/{deployment_id}/logs", response_model=Envelope[dict])
async def logs(
    deployment_id: IdPath, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    lines: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Envelope[dict]:
    """The last `lines` lines of build and app output."""
    await service.get_deployment(session, deployment_id, user)
    try:
        async with _client(settings, 30) as client:
            resp = await client.get(f"/deployments/{deployment_id}/logs", params={"lines": lines})
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        raise _unavailable(settings, exc) from exc
    return Envelope(data=resp.json())


@router.get("/{deployment_id}/logs/stream")
async def stream(
    deployment_id: IdPath, request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: every build and app line (one event each), then new ones as they come.
    Reconnect with Last-Event-ID to continue without gaps. Browsers (EventSource) may pass the token as
    `?access_token=`."""
    await service.get_deployment(session, deployment_id, user)
    await session.close()  # do not hold a pooled connection for the life of the stream
    client = _client(settings, httpx.Timeout(10, read=None))
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


# Close codes a WebSocket client can branch on (4000 + the HTTP status the SSE route would answer).
_WS_CLOSE = {ErrorCode.UNAUTHORIZED: 4401, ErrorCode.TOKEN_EXPIRED: 4401, ErrorCode.DEPLOYMENT_NOT_FOUND: 4404}


@router.websocket("/{deployment_id}/logs/stream")
async def stream_ws(
    websocket: WebSocket, deployment_id: IdPath,
    last_event_id: Annotated[str | None, Query(description="resume after this id, like SSE's Last-Event-ID")] = None,
) -> None:
    """The SSE stream's lines over a WebSocket: one JSON message each, `{"event", "id", "data"}`, with the same
    ids (resume with `?last_event_id=`). The token goes in `Authorization` or `?access_token=`."""
    settings: Settings = websocket.app.state.settings
    await websocket.accept()
    try:
        async with websocket.app.state.sessions() as session:
            token = bearer(websocket)
            if not token:
                raise unauthorized("Log in first: pass the token as `?access_token=` or in `Authorization`.")
            user = await user_from_token(websocket, session, token)
            await service.get_deployment(session, deployment_id, user)
    except PortsideError as exc:
        await websocket.close(code=_WS_CLOSE.get(exc.code, 4400), reason=exc.code)
        return
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    async with _client(settings, httpx.Timeout(10, read=None)) as client:
        try:
            async with (
                client.stream("GET", f"/deployments/{deployment_id}/logs/stream", headers=headers) as upstream,
                anyio.create_task_group() as tasks,
            ):

                async def until_closed() -> None:
                    try:
                        while True:
                            await websocket.receive_text()
                    except WebSocketDisconnect:
                        tasks.cancel_scope.cancel()

                if upstream.status_code != 200:
                    raise httpx.HTTPStatusError("logstream refused", request=upstream.request, response=upstream)
                tasks.start_soon(until_closed)
                async for message in _sse_messages(upstream.aiter_lines()):
                    await websocket.send_json(message)
                tasks.cancel_scope.cancel()
        except httpx.HTTPError:
            await websocket.close(code=1011, reason=ErrorCode.LOGSTREAM_UNAVAILABLE)
        except WebSocketDisconnect:
            return


async def _sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[dict]:
    """Server-Sent Event lines -> {"event", "id", "data"} (comments and pings skipped)."""
    event: str = "message"
    event_id: str | None = None
    data: list[str] = []
    async for line in lines:
        if line == "":
            if data:
                yield {"event": event, "id": event_id, "data": "\n".join(data)}
            event, event_id, data = "message", None, []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "id":
            event_id = value
        elif name == "data":
            data.append(value)

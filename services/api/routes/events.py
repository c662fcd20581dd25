"""The public event stream for people and scripts with a token: `GET /api/events` replays the recent public
events the caller may see (Server-Sent Events) and, with `follow`, keeps sending new ones; `portside events`
reads it. The AsyncAPI document of every subject is served beside it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.api import service
from services.api.deps import CurrentUser, SessionDep, SettingsDep
from shared.access import SEE_ALL_ROLES, EventOwners, can_see
from shared.db.models import User
from shared.messaging.subjects import EVENTS_WILDCARD, PublicSubject

router = APIRouter(tags=["events"])

KEEPALIVE_SECONDS = 15.0
# Written by `make docs` (services/asyncapi.py) from the FastStream apps; shipped with the package.
ASYNCAPI = Path(__file__).resolve().parents[1] / "asyncapi.json"


def event_line(subject: str, payload: dict[str, Any], seq: int) -> dict[str, Any]:
    """What one event looks like to a subscriber (SSE data, `portside events --json`, webhook bodies alike)."""
    return {"subject": subject, "deployment_id": payload.get("deployment_id"), "seq": seq, "payload": payload}


@router.get("/api/events")
async def events(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep,
    deployment_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    follow: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events, one per public event you may see (`event:` the short subject, `id:` its stream
    sequence, `data:` {"subject", "deployment_id", "seq", "payload"}): the last `limit`, then with `follow` new
    ones as they happen. Reconnect with Last-Event-ID to continue after it."""
    if deployment_id is not None:
        await service.get_deployment(session, deployment_id, user)
    await session.close()  # do not hold a pooled connection for the life of the stream
    js = request.app.state.bus.broker.config.connection_state.stream
    info = await js.stream_info(settings.events_stream_name)
    last_seq = info.state.last_seq
    resume = int(last_event_id) + 1 if last_event_id and last_event_id.isdigit() else None
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if resume else DeliverPolicy.ALL,
        opt_start_seq=resume, inactive_threshold=60,
    )
    sub = await js.subscribe(EVENTS_WILDCARD, ordered_consumer=True, config=config)
    visible = _Visibility(request, user, deployment_id)

    async def stream() -> AsyncIterator[bytes]:
        try:
            # The replay: everything up to the sequence the stream had when the request came, the last `limit` kept.
            recent: deque[bytes] = deque(maxlen=None if resume else limit)
            seq = (resume or 1) - 1
            while seq < last_seq:
                try:
                    msg = await sub.next_msg(timeout=5)
                except NatsTimeout:
                    break
                seq = msg.metadata.sequence.stream
                if (chunk := await visible.sse(msg.subject, msg.data, seq)) is not None:
                    recent.append(chunk)
            for chunk in recent:
                yield chunk
            if not follow:
                return
            yield b": following\n\n"
            while not await request.is_disconnected():
                try:
                    msg = await sub.next_msg(timeout=KEEPALIVE_SECONDS)
                except NatsTimeout:
                    yield b": ping\n\n"
                    continue
                chunk = await visible.sse(msg.subject, msg.data, msg.metadata.sequence.stream)
                if chunk is not None:
                    yield chunk
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(sub.unsubscribe())

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


class _Visibility:
    """Which events the caller may see: those about what they may see (shared/access.py), of one deployment
    when asked, looked up in short sessions so the stream holds no database connection."""

    def __init__(self, request: Request, user: User, deployment_id: int | None) -> None:
        self.request, self.user, self.deployment_id = request, user, deployment_id
        self.owners = EventOwners()

    async def sse(self, subject: str, data: bytes, seq: int) -> bytes | None:
        try:
            short = PublicSubject(subject).short
            payload = json.loads(data)
        except ValueError:
            return None
        if self.deployment_id is not None and payload.get("deployment_id") != self.deployment_id:
            return None
        if self.user.role not in SEE_ALL_ROLES:
            async with self.request.app.state.sessions() as session:
                owner = await self.owners.owner(session, payload)
            if not can_see(self.user.role, self.user.id, owner):
                return None
        line = json.dumps(event_line(subject, payload, seq), separators=(",", ":"))
        return f"id: {seq}\nevent: {short}\ndata: {line}\n\n".encode()


@router.get("/api/asyncapi.json", include_in_schema=False)
async def asyncapi() -> JSONResponse:
    """The AsyncAPI document of every subject, internal and public (docs/asyncapi.json, from `make docs`)."""
    return JSONResponse(json.loads(ASYNCAPI.read_text()))

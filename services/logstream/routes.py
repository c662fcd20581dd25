"""SSE and history endpoints over the logs stream. Each event carries the stream sequence as its id, so a
client that reconnects with Last-Event-ID continues exactly where it stopped. Every line is redacted here,
on its way out: the deployment's secret values and common credential shapes never reach a client."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from sse_starlette.sse import EventSourceResponse

from shared.messaging.events import LogLine
from shared.messaging.subjects import logs_subject
from shared.secrets import redact, secret_values
from shared.worker import WorkerContext

# A secret changed while a stream is open is picked up within this long.
_SECRETS_REFRESH_SECONDS = 10.0

router = APIRouter(prefix="/deployments", tags=["logs"])


def _ctx(request: Request) -> WorkerContext:
    return request.app.state.ctx


async def _count(js: JetStreamContext, stream: str, subject: str) -> int:
    info = await js.stream_info(stream, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


def _entry(line: LogLine, seq: int, secrets: list[str]) -> dict:
    return {"seq": seq, "source": line.source, "time": line.time.isoformat(), "line": redact(line.line, secrets),
            "step": line.step, "total_steps": line.total_steps}


async def _secrets(ctx: WorkerContext, deployment_id: int) -> list[str]:
    async with ctx.sessions() as session:
        return await secret_values(session, ctx.settings, deployment_id)


async def history(ctx: WorkerContext, deployment_id: int, lines: int) -> list[dict]:
    """The last `lines` log lines (build and app) of a deployment."""
    js = ctx.broker.config.connection_state.stream
    subject = logs_subject(deployment_id)
    stream = ctx.settings.logs_stream_name
    if await _count(js, stream, subject) == 0:
        return []
    secrets = await _secrets(ctx, deployment_id)
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    tail: deque[dict] = deque(maxlen=lines)
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            tail.append(_entry(LogLine.model_validate_json(msg.data), msg.metadata.sequence.stream, secrets))
            if msg.metadata.num_pending == 0:
                break
    except TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return list(tail)


@router.get("/{deployment_id}/logs")
async def get_logs(
    deployment_id: int, request: Request, lines: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> dict:
    entries = await history(_ctx(request), deployment_id, lines)
    return {"logs": "\n".join(e["line"] for e in entries), "entries": entries}


@router.get("/{deployment_id}/logs/stream")
async def stream_logs(
    deployment_id: int,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
    after: Annotated[int | None, Query(description="resume after this sequence (like Last-Event-ID)")] = None,
) -> EventSourceResponse:
    ctx = _ctx(request)
    start = after
    if last_event_id and last_event_id.isdigit():
        start = int(last_event_id)
    return EventSourceResponse(_events(ctx, deployment_id, request, start), ping=15)


async def _events(ctx: WorkerContext, deployment_id: int, request: Request, after: int | None) -> AsyncIterator[dict]:
    js = ctx.broker.config.connection_state.stream
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after else DeliverPolicy.ALL,
        opt_start_seq=after + 1 if after else None,
    )
    sub = await js.subscribe(
        logs_subject(deployment_id), stream=ctx.settings.logs_stream_name, ordered_consumer=True, config=config
    )
    secrets, loaded = await _secrets(ctx, deployment_id), time.monotonic()
    try:
        while not await request.is_disconnected():
            try:
                msg = await sub.next_msg(timeout=1.0)
            except TimeoutError:
                continue
            if time.monotonic() - loaded > _SECRETS_REFRESH_SECONDS:
                secrets, loaded = await _secrets(ctx, deployment_id), time.monotonic()
            line = LogLine.model_validate_json(msg.data)
            text = redact(line.line, secrets).replace("\r", "")
            event = {"event": line.source, "id": str(msg.metadata.sequence.stream), "data": text}
            yield event
            if line.step is not None and line.total_steps:
                yield {"event": "progress", "data": f'{{"step": {line.step}, "total_steps": {line.total_steps}}}'}
    finally:
        await sub.unsubscribe()

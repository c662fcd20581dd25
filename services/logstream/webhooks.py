"""Outgoing webhooks. A durable consumer of the public events stream writes one delivery row per webhook that
wants the event and whose owner may see it; a delivery loop POSTs due rows concurrently, retries failures with
exponential backoff and records the outcome. Nothing here is on the deploy pipeline's path: a slow or dead
receiver delays only its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from faststream.nats import NatsMessage
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.logstream.pinned import pinned_client
from shared.access import EventOwners, can_see
from shared.config import Settings
from shared.db.models import User, Webhook, WebhookDelivery
from shared.errors import PortsideError
from shared.messaging.streams import events_subscriber
from shared.messaging.subjects import PublicSubject
from shared.secrets import Cipher
from shared.webhooks import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    body_of,
    check_webhook_target,
    sign,
    wants,
)
from shared.worker import WorkerContext

log = logging.getLogger(__name__)

# Deliveries in flight at once in this process; a receiver that hangs holds one slot until its timeout.
CONCURRENCY = 32
BATCH = 64


def backoff(settings: Settings, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: base, 2x base, 4x base, ... capped at an hour."""
    return min(settings.webhook_retry_base_seconds * 2 ** (attempts - 1), 3600.0)


class Deliverer:
    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.wake = asyncio.Event()
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.inflight: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None
        self.tls: ssl.SSLContext | None = None
        self._cipher: Cipher | None = None

    @property
    def cipher(self) -> Cipher:
        # Made on first use: reading the installation's key is for a running process, not for `make docs`.
        if self._cipher is None:
            self._cipher = Cipher(self.ctx.settings)
        return self._cipher

    def register(self) -> None:
        subscriber = events_subscriber(self.ctx.broker, self.ctx.settings, "webhooks")

        async def on_public_event(body: dict, message: NatsMessage) -> None:
            await self.fan_out(message.raw_message.subject, body)

        subscriber(on_public_event)

    async def fan_out(self, subject: str, payload: dict[str, Any]) -> int:
        """One pending delivery per webhook that wants `subject` and whose owner may see it; a redelivered event
        adds nothing (unique per webhook and event id). Returns how many rows were new."""
        try:
            PublicSubject(subject)
        except ValueError:
            return 0
        event_id = str(payload.get("event_id") or "")
        body = body_of(subject, payload)
        owners = EventOwners()
        added = 0
        async with self.ctx.sessions() as session:
            hooks = (await session.execute(
                select(Webhook.id, Webhook.events, User.role, User.id.label("user_id"))
                .join(User, User.id == Webhook.owner_id).where(User.disabled.is_(False))
            )).all()
            for hook in hooks:
                if not wants(hook.events, subject):
                    continue
                if not can_see(hook.role, hook.user_id, await owners.owner(session, payload)):
                    continue
                result = await session.execute(
                    pg_insert(WebhookDelivery).values(webhook_id=hook.id, event_id=event_id, subject=subject, body=body)
                    .on_conflict_do_nothing(constraint="uq_webhook_deliveries_webhook_event")
                )
                added += result.rowcount or 0  # type: ignore[attr-defined]
            await session.commit()
        if added:
            self.wake.set()
        return added

    def start(self) -> None:
        # One TLS context (the CA bundle read once) for every delivery's own pinned connection.
        self.tls = httpx.create_ssl_context(trust_env=False)
        self.task = asyncio.create_task(self.deliver_forever(), name="webhook-deliveries")

    async def stop(self) -> None:
        for task in [self.task, *self.inflight]:
            if task is not None:
                task.cancel()
        for task in [self.task, *self.inflight]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def deliver_forever(self) -> None:
        while True:
            try:
                claimed = await self.deliver_due()
            except Exception:
                log.exception("webhook delivery pass failed; pending deliveries stay and are tried again")
                claimed = 0
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 1.0)
            self.wake.clear()

    async def deliver_due(self) -> int:
        """Claim due deliveries (moving their next attempt past the receiver's timeout, so another replica
        leaves them alone meanwhile) and send each in its own task. Returns how many were claimed."""
        settings = self.ctx.settings
        lease = timedelta(seconds=settings.webhook_timeout_seconds + 30)
        free = CONCURRENCY - len(self.inflight)
        if free <= 0:
            return 0
        async with self.ctx.sessions() as session:
            due = (
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= func.now()
                ).order_by(WebhookDelivery.next_attempt_at).limit(min(free, BATCH)).with_for_update(skip_locked=True)
            )
            rows = (await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id.in_(due.scalar_subquery()))
                .values(next_attempt_at=func.now() + lease)
                .returning(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.subject,
                           WebhookDelivery.body, WebhookDelivery.attempts)
            )).all()
            hooks = {}
            if rows:
                ids = {row.webhook_id for row in rows}
                hooks = {h.id: h for h in (await session.scalars(select(Webhook).where(Webhook.id.in_(ids)))).all()}
            await session.commit()
        for row in rows:
            hook = hooks.get(row.webhook_id)
            if hook is None:
                continue
            task = asyncio.create_task(self._attempt(row, hook.url, hook.secret_encrypted))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
        return len(rows)

    async def _attempt(self, row: Any, url: str, secret_encrypted: bytes) -> None:
        settings = self.ctx.settings
        body = row.body.encode()
        status_code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        async with self.slots:
            try:
                # Checked again at the moment of use, and the POST connects to the addresses this check
                # accepted: the name may resolve elsewhere by now (DNS rebinding).
                target = await asyncio.to_thread(check_webhook_target, url, settings)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": "Portside-Webhooks/1",
                    SIGNATURE_HEADER: sign(self.cipher.decrypt(secret_encrypted), body),
                    TIMESTAMP_HEADER: str(int(datetime.now(UTC).timestamp())),
                    EVENT_HEADER: PublicSubject(row.subject).short,
                }
                async with pinned_client(target, settings.webhook_timeout_seconds, self.tls) as http:
                    resp = await http.post(target.url, content=body, headers=headers)
                status_code = resp.status_code
                if not 200 <= resp.status_code < 300:
                    error = f"the receiver answered HTTP {resp.status_code}"
            except PortsideError as exc:
                error = exc.message
            except (httpx.HTTPError, OSError, ValueError) as exc:
                error = f"{exc.__class__.__name__}: {exc}"[:500]
        await self._record(row, status_code, error, (time.perf_counter() - started) * 1000)

    async def _record(self, row: Any, status_code: int | None, error: str | None, ms: float) -> None:
        settings = self.ctx.settings
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status_code, "last_error": error,
                                  "duration_ms": round(ms, 2)}
        if error is None:
            values.update(status="delivered", delivered_at=func.now())
        elif attempts >= settings.webhook_max_attempts:
            values.update(status="failed", last_error=f"gave up after {attempts} attempts; last: {error}")
        else:
            delay = backoff(settings, attempts)
            values["next_attempt_at"] = func.now() + timedelta(seconds=delay)
            # Look again when it is due (the loop's own pass is only every second).
            asyncio.get_running_loop().call_later(delay, self.wake.set)
        async with self.ctx.sessions() as session:
            # Only if nobody reset it meanwhile (a redeliver while this attempt ran starts its own count).
            await session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == row.id, WebhookDelivery.attempts == row.attempts,
                WebhookDelivery.status == "pending",
            ).values(**values))
            await session.commit()
        if error is not None:
            log.info("webhook delivery %s attempt %d failed: %s", row.id, attempts, error)

"""Public events are published once, through an outbox: `stage()` writes the event in the caller's transaction
(so it exists exactly when the change it describes was committed), and a relay publishes staged rows in order
with the row id as Nats-Msg-Id, then deletes them. A relay that dies between publish and delete publishes the
row again later; JetStream's duplicate window drops the repeat. Every Portside process runs a relay; a
Postgres advisory lock lets one work at a time, which also keeps the order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from faststream.nats import NatsBroker
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.config import Settings
from shared.db.models import OutboxEvent
from shared.messaging.contract import SUBJECT_PAYLOADS
from shared.messaging.public import PublicEvent
from shared.messaging.subjects import PublicSubject

log = logging.getLogger(__name__)

CHANNEL = "portside_outbox"
# pg_advisory_xact_lock key: "PSEV" in ASCII.
LOCK_KEY = 0x50534556
BATCH = 500


async def stage(session: AsyncSession, subject: PublicSubject, event: PublicEvent) -> None:
    """Write a public event in the caller's transaction (the caller commits); its type must be the subject's
    payload in the contract table."""
    expected = SUBJECT_PAYLOADS[subject]
    if type(event) is not expected:
        raise TypeError(f"{subject.value} carries {expected.__name__}, not {type(event).__name__}")
    await session.execute(insert(OutboxEvent).values(subject=subject.value, payload=event.model_dump(mode="json")))
    # Delivered at commit, and only if the transaction commits: wakes the relays at once.
    await session.execute(select(func.pg_notify(CHANNEL, "")))


def msg_id(row_id: int) -> str:
    return f"outbox-{row_id}"


async def relay_once(sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings) -> int:
    """Publish what is staged, oldest first; returns how many rows went out (0 when another relay holds the lock)."""
    sent = 0
    while True:
        async with sessions() as session:
            if not await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))):
                return sent
            rows = (await session.execute(
                select(OutboxEvent.id, OutboxEvent.subject, OutboxEvent.payload).order_by(OutboxEvent.id).limit(BATCH)
            )).all()
            if not rows:
                return sent
            # Written to the connection in order, acknowledged together: the order holds, the wait is one round trip.
            acks = [
                await js.publish_async(
                    row.subject, json.dumps(row.payload).encode(), stream=settings.events_stream_name,
                    headers={"Nats-Msg-Id": msg_id(row.id)},
                )
                for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*acks), timeout=10)
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows])))
            await session.commit()
            sent += len(rows)


async def relay_forever(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], js: JetStreamContext, settings: Settings
) -> None:
    """Publish staged events whenever Postgres notifies a commit, and every `outbox_poll_seconds` regardless
    (a notification is lost while the listening connection reconnects; a row never is)."""
    wake = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        try:
            conn = await stack.enter_async_context(engine.connect())
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            await raw.add_listener(CHANNEL, lambda *_: wake.set())
        except Exception as exc:  # noqa: BLE001 - polling alone still publishes everything, only later
            log.warning("outbox relay polls only: could not LISTEN (%s)", exc)
        while True:
            try:
                await relay_once(sessions, js, settings)
            except (TimeoutError, NatsError, OSError) as exc:
                log.warning("outbox relay: publishing failed (%s); the rows stay and go out later", exc)
            except Exception:
                log.exception("outbox relay pass failed; the rows stay and go out later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), settings.outbox_poll_seconds)
            wake.clear()


def start_relay(engine: AsyncEngine, broker: NatsBroker, settings: Settings) -> asyncio.Task[None]:
    """Run this process's relay in the background (the broker must be connected); cancel the task to stop it."""
    from shared.db.session import make_sessionmaker

    js = broker.config.connection_state.stream
    return asyncio.create_task(relay_forever(engine, make_sessionmaker(engine), js, settings), name="outbox-relay")


async def stop_relay(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

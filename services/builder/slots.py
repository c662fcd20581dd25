"""The global limit on builds running at once (PORTSIDE_MAX_CONCURRENT_BUILDS), across every builder replica.

A slot is a Postgres session-level advisory lock (class BUILD_SLOT_CLASS, object = slot number) held on a
connection of its own for the whole build. A replica that dies loses its connection, and Postgres frees the
slot with it: no row to clean up, no slot leaked by a crash."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

# "Port" in ASCII: keeps Portside's advisory locks apart from anyone else's in the same database.
BUILD_SLOT_CLASS = 0x506F7274


class SlotWaitAbandoned(Exception):
    """`still_wanted` answered False while waiting: the build was cancelled or stopped before it got a slot."""


async def _try_slots(conn: AsyncConnection, limit: int) -> int | None:
    for slot in range(limit):
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:c, :s)"), {"c": BUILD_SLOT_CLASS, "s": slot})
        await conn.commit()  # a session lock outlives the transaction; no transaction stays open meanwhile
        if got:
            return slot
    return None


async def busy_slots(conn: AsyncConnection) -> int:
    """Slots held right now, by any replica (pg_locks)."""
    count = await conn.scalar(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c AND granted"
    ), {"c": BUILD_SLOT_CLASS})
    await conn.commit()
    return int(count or 0)


@asynccontextmanager
async def build_slot(
    engine: AsyncEngine,
    limit: int,
    still_wanted: Callable[[], Awaitable[bool]],
    on_wait: Callable[[int], Awaitable[None]],
    poll_seconds: float = 1.0,
) -> AsyncIterator[int]:
    """Hold one of `limit` build slots for the body, waiting for one if all are taken: `on_wait(busy)` is
    awaited once when the wait starts, `still_wanted()` between tries (False raises SlotWaitAbandoned).
    Yields the slot number."""
    conn = await engine.connect()
    slot: int | None = None
    try:
        waiting = False
        while (slot := await _try_slots(conn, limit)) is None:
            if not waiting:
                waiting = True
                await on_wait(await busy_slots(conn))
            await anyio.sleep(poll_seconds)
            if not await still_wanted():
                raise SlotWaitAbandoned
        yield slot
    finally:
        with anyio.CancelScope(shield=True):
            await _release(conn, slot)


async def _release(conn: AsyncConnection, slot: int | None) -> None:
    try:
        if slot is not None:
            await conn.execute(text("SELECT pg_advisory_unlock(:c, :s)"), {"c": BUILD_SLOT_CLASS, "s": slot})
            await conn.commit()
    except (SQLAlchemyError, OSError) as exc:
        # The lock must not go back to the pool with the connection: closing it for good frees the slot.
        log.warning("build slot %s: unlock failed (%s); dropping the connection to free it", slot, exc)
        await conn.invalidate()
    finally:
        await conn.close()

"""PORTSIDE_MAX_CONCURRENT_BUILDS against a real Postgres: slots are advisory locks on their own connections,
so two engines (two builder replicas) share one limit, a waiter gets the slot when it is freed, and a cancelled
waiter stops waiting."""

from __future__ import annotations

import anyio
import pytest

from services.builder.slots import SlotWaitAbandoned, build_slot
from shared.config import Settings
from shared.db.session import make_engine


async def _yes() -> bool:
    return True


async def test_build_slot_limit_holds_across_engines_and_a_waiter_gets_the_freed_slot(settings: Settings) -> None:
    # Two engines stand for two builder replicas: the limit must hold between them, not only inside one.
    first_replica = make_engine(settings.require_database_url(), application_name="portside-test-slots-1")
    second_replica = make_engine(settings.require_database_url(), application_name="portside-test-slots-2")
    waits: list[int] = []
    order: list[str] = []

    async def on_wait(busy: int) -> None:
        waits.append(busy)

    async def second() -> None:
        async with build_slot(second_replica, 1, _yes, on_wait, poll_seconds=0.05) as slot:
            order.append(f"second got {slot}")

    try:
        async with (
            anyio.create_task_group() as tg,
            build_slot(first_replica, 1, _yes, on_wait, poll_seconds=0.05) as slot,
        ):
            order.append(f"first got {slot}")
            tg.start_soon(second)
            with anyio.fail_after(30):  # the second replica's first connection is slow on a busy machine
                while not waits:
                    await anyio.sleep(0.02)
            await anyio.sleep(0.2)
            assert order == ["first got 0"]  # still waiting while the slot is held
            order.append("first done")
        assert order == ["first got 0", "first done", "second got 0"]
        assert waits == [1]  # one wait, told that 1 slot is busy
        # Two slots: both hold at once, no wait.
        waits.clear()
        async with build_slot(first_replica, 2, _yes, on_wait) as a, build_slot(second_replica, 2, _yes, on_wait) as b:
            assert {a, b} == {0, 1}
        assert waits == []
    finally:
        await first_replica.dispose()
        await second_replica.dispose()


async def test_build_slot_waiter_stops_when_no_longer_wanted_and_the_slot_frees_on_exit(settings: Settings) -> None:
    engine = make_engine(settings.require_database_url(), application_name="portside-test-slots")
    asked: list[bool] = []

    async def cancelled_after_two_tries() -> bool:
        asked.append(True)
        return len(asked) < 2

    async def noop(_: int) -> None:
        return None

    try:
        async with build_slot(engine, 1, _yes, noop) as held:
            assert held == 0
            with anyio.fail_after(5), pytest.raises(SlotWaitAbandoned):
                async with build_slot(engine, 1, cancelled_after_two_tries, noop, poll_seconds=0.05):
                    pytest.fail("got a slot that is held")
            assert len(asked) == 2
        # The holder left: the slot is free again, at once.
        with anyio.fail_after(2):
            async with build_slot(engine, 1, _yes, noop) as again:
                assert again == 0
    finally:
        await engine.dispose()

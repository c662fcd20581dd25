"""The API's side of NATS: publish commands, and wait for the fact that answers them (matched by
correlation id). Facts arrive on a core subscription, so every API replica sees every reply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import cast

from faststream.nats import NatsBroker, NatsMessage

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.messaging.contract import FACTS, SUBJECT_PAYLOADS
from shared.messaging.events import Event
from shared.messaging.streams import ensure_streams, make_broker, publish
from shared.messaging.subjects import Subject


class Bus:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: NatsBroker = make_broker(settings, "api")
        self._waiters: dict[str, tuple[frozenset[Subject], asyncio.Future[tuple[Subject, Event]]]] = {}

        async def on_fact(body: dict, message: NatsMessage) -> None:
            self._resolve(message.raw_message.subject, body)

        # Every fact in the contract table, each on its own core subscription. no_reply: a worker publishes a fact
        # to JetStream as a request whose reply is the stream's ack, and a core subscriber sees that reply subject
        # too. FastStream would answer it with the handler's empty result, and when that came first the worker
        # read it as the ack, failed (JSONDecodeError) after its work was done, and its job ran again.
        for fact in FACTS:
            self.broker.subscriber(fact.value, no_reply=True)(on_fact)

    def _resolve(self, subject_text: str, body: dict) -> None:
        subject = Subject(subject_text)  # subscribed only to the table's facts
        waiter = self._waiters.get(body.get("correlation_id", ""))
        if waiter is None or subject not in waiter[0] or waiter[1].done():
            return
        waiter[1].set_result((subject, cast(Event, SUBJECT_PAYLOADS[subject].model_validate(body))))

    async def start(self) -> None:
        await self.broker.connect()
        await ensure_streams(self.broker, self.settings)
        await self.broker.start()

    async def stop(self) -> None:
        await self.broker.stop()

    async def send(self, subject: Subject, event: Event) -> None:
        await publish(self.broker, self.settings, subject, event)

    async def request(
        self, subject: Subject, event: Event, answers: Iterable[Subject], timeout: float | None = None
    ) -> tuple[Subject, Event]:
        """Publish a command and wait for the first fact in `answers` with the same correlation id."""
        future: asyncio.Future[tuple[Subject, Event]] = asyncio.get_running_loop().create_future()
        self._waiters[event.correlation_id] = (frozenset(answers), future)
        try:
            await self.send(subject, event)
            return await asyncio.wait_for(future, timeout or self.settings.worker_timeout_seconds)
        except TimeoutError as exc:
            raise PortsideError(
                ErrorCode.WORKER_TIMEOUT,
                f"No worker answered {subject.value} within {timeout or self.settings.worker_timeout_seconds:.0f} s; "
                "check that the workers run (`portside up` starts them) and see their logs.",
            ) from exc
        finally:
            self._waiters.pop(event.correlation_id, None)

"""Two logstream replicas that follow the same container publish each line with the same id; the real
nats-server's JetStream stores it once, and lines with other ids all stay."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from shared.config import Settings
from shared.messaging.events import LogLine
from shared.messaging.streams import publish_log
from shared.messaging.subjects import logs_subject
from shared.worker import make_context


async def test_log_lines_published_by_two_replicas_with_one_id_are_stored_once(settings: Settings) -> None:
    replicas = [make_context("logstream", settings) for _ in range(2)]
    for ctx in replicas:
        await ctx.start()
    try:
        deployment_id = random.randint(10**8, 10**9)  # a subject of its own in the shared stream
        when = datetime.now(UTC)
        for n in range(3):
            line = LogLine(deployment_id=deployment_id, source="app", line=f"line {n}", time=when)
            for ctx in replicas:  # both read the same line from the engine
                await publish_log(ctx.broker, settings, line, msg_id=f"app:{deployment_id}:c0ffee:{n}")
        js = replicas[0].broker.config.connection_state.stream
        info = await js.stream_info(settings.logs_stream_name, subjects_filter=logs_subject(deployment_id))
        assert (info.state.subjects or {}).get(logs_subject(deployment_id)) == 3
    finally:
        for ctx in replicas:
            await ctx.close()

"""Public events: events per second from committed changes to 50 subscribers of the public stream (outbox ->
relay -> JetStream -> 50 ordered consumers), one transaction per event and as one burst, and webhook delivery
latency (commit -> receiver) p50/p99, with an embedded nats-server and PostgreSQL. Writes
bench/results/events.json."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing import Queue
from pathlib import Path

import nats

from services.logstream.webhooks import Deliverer
from shared.config import Settings
from shared.db.models import User, Webhook
from shared.db.session import make_engine, make_sessionmaker
from shared.embedded import start_nats, start_postgres
from shared.messaging.outbox import stage, start_relay, stop_relay
from shared.messaging.public import DeploymentStatusChanged
from shared.messaging.streams import ensure_streams, make_broker
from shared.messaging.subjects import EVENTS_WILDCARD
from shared.messaging.subjects import PublicSubject as P
from shared.migrations import upgrade
from shared.secrets import Cipher
from tests.support import ROOT

RESULTS = ROOT / "bench" / "results" / "events.json"
SUBSCRIBERS = 50
EVENTS = 1000
WRITERS = 4
WEBHOOK_EVENTS = 200
WEBHOOK_RATE = 20  # events a second: latency, not a queue


def event(n: int) -> DeploymentStatusChanged:
    return DeploymentStatusChanged(deployment_id=n, previous_status="queued", status="building", message="bench")


def subscribers(nats_url: str, ready: Queue, finished: Queue) -> None:  # type: ignore[type-arg]
    """In a process of its own (so counting 50 x EVENTS messages does not starve the writers and the relay):
    SUBSCRIBERS connections, each an ordered consumer of new events; reports when every one has them all."""

    async def run() -> None:
        got = [0] * SUBSCRIBERS
        done = asyncio.Event()
        clients = [await nats.connect(nats_url) for _ in range(SUBSCRIBERS)]

        def counter(i: int):  # type: ignore[no-untyped-def]
            async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
                got[i] += 1
                if got[i] % EVENTS == 0 and all(g >= got[i] for g in got):
                    finished.put(time.time())  # every subscriber has this round's events
                    if got[i] == 2 * EVENTS:
                        done.set()
            return on_msg

        for i, client in enumerate(clients):
            await client.jetstream().subscribe(EVENTS_WILDCARD, ordered_consumer=True,  # type: ignore[arg-type]
                                               deliver_policy="new", cb=counter(i))
        ready.put(True)
        await asyncio.wait_for(done.wait(), 900)
        for client in clients:
            await client.close()

    asyncio.run(run())


async def fan_out(settings: Settings) -> dict:
    """EVENTS changes committed by WRITERS concurrent writers (one transaction each, as transition() does), relayed
    by one process's relay, until each of the SUBSCRIBERS (in another process) has every event."""
    engine = make_engine(settings.require_database_url(), application_name="portside-bench", pool_size=10)
    sessions = make_sessionmaker(engine)
    broker = make_broker(settings, "bench")
    await broker.connect()
    await ensure_streams(broker, settings)
    spawn = multiprocessing.get_context("spawn")
    ready, finished = spawn.Queue(), spawn.Queue()
    child = spawn.Process(target=subscribers, args=(settings.require_nats_url(), ready, finished))
    child.start()
    await asyncio.to_thread(ready.get, True, 120)
    relay = start_relay(engine, broker, settings)

    async def writer(start: int) -> None:
        for n in range(start, EVENTS, WRITERS):
            async with sessions() as session:
                await stage(session, P.DEPLOYMENT_STATUS_CHANGED, event(n))
                await session.commit()

    started = time.time()
    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    committed = time.time() - started
    elapsed = await asyncio.to_thread(finished.get, True, 900) - started
    # A burst: EVENTS rows committed at once (the relay's batches), timed from the commit to the last subscriber.
    async with sessions() as session:
        for n in range(EVENTS):
            await stage(session, P.DEPLOYMENT_STATUS_CHANGED, event(EVENTS + n))
        burst_start = time.time()
        await session.commit()
    burst = await asyncio.to_thread(finished.get, True, 900) - burst_start
    child.join(30)
    await stop_relay(relay)
    await broker.stop()
    await engine.dispose()
    return {
        "events": EVENTS, "subscribers": SUBSCRIBERS, "writers": WRITERS,
        "seconds_to_commit": round(committed, 2), "seconds_until_all_delivered": round(elapsed, 2),
        "events_per_second": round(EVENTS / elapsed, 1),
        "deliveries_per_second": round(EVENTS * SUBSCRIBERS / elapsed, 1),
        "burst_seconds_commit_to_all_delivered": round(burst, 2),
        "burst_events_per_second": round(EVENTS / burst, 1),
        "burst_deliveries_per_second": round(EVENTS * SUBSCRIBERS / burst, 1),
    }


async def webhook_latency(settings: Settings) -> dict:
    """WEBHOOK_EVENTS changes at WEBHOOK_RATE a second; latency = receipt at the receiver - occurred_at."""
    latencies: list[float] = []
    finished = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            occurred = datetime.fromisoformat(body["payload"]["occurred_at"]).timestamp()
            latencies.append(time.time() - occurred)
            self.send_response(204)
            self.end_headers()
            if len(latencies) >= WEBHOOK_EVENTS:
                finished.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from shared.worker import make_context

    ctx = make_context("logstream", settings)
    deliverer = Deliverer(ctx)
    deliverer.register()
    await ctx.start()
    deliverer.start()
    async with ctx.sessions() as session:
        user = User(email="bench@portside.test", password_hash="-", role="admin")
        session.add(user)
        await session.flush()
        session.add(Webhook(owner_id=user.id, url=f"http://127.0.0.1:{server.server_address[1]}/hook", events=["*"],
                            secret_encrypted=Cipher(settings).encrypt("bench-secret-0123456789")))
        await session.commit()
    for n in range(WEBHOOK_EVENTS):
        async with ctx.sessions() as session:
            await stage(session, P.DEPLOYMENT_STATUS_CHANGED, event(100_000 + n))
            await session.commit()
        await asyncio.sleep(1 / WEBHOOK_RATE)
    await asyncio.to_thread(finished.wait, 120)
    await deliverer.stop()
    await ctx.close()
    server.shutdown()
    ms = sorted(x * 1000 for x in latencies)
    return {
        "events": WEBHOOK_EVENTS, "rate_per_second": WEBHOOK_RATE, "delivered": len(ms),
        "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(ms[max(0, int(len(ms) * 0.99) - 1)], 1),
        "max_ms": round(ms[-1], 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="portside-events-bench-") as tmp:
        root = Path(tmp)
        nats_server = start_nats(root / "nats")
        postgres = start_postgres(root / "pg" / "data", cleanup_mode="delete")
        try:
            upgrade(postgres.url)
            settings = Settings(home=root / "home", nats_url=nats_server.url, database_url=postgres.url,
                                allow_private_networks=True)
            results = {"fan_out": asyncio.run(fan_out(settings)), "webhooks": asyncio.run(webhook_latency(settings))}
        finally:
            postgres.stop()
            nats_server.stop()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Write the AsyncAPI document of every subject to services/api/asyncapi.json (docs/asyncapi.json links to it;
`make docs`; a unit test keeps it current; the API serves it at GET /api/asyncapi.json).

It is generated from the FastStream apps themselves: each worker's broker with the subscribers its register()
declares, logstream's webhook consumer of the public stream, and the API's fact subscriptions. Workers publish
through `publish()` rather than declared publishers, so each row of the contract table
(shared/messaging/contract.py) adds a publisher with its payload model to its producers' brokers. This build
tool is the one module that imports every service; no service imports it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from shared.config import Settings
from shared.messaging.contract import ROUTES, Service

DOC = Path(__file__).resolve().parent / "api" / "asyncapi.json"


def brokers(settings: Settings) -> dict[Service, NatsBroker]:
    from services.api.bus import Bus
    from services.builder.handlers import register as builder
    from services.detector.handlers import register as detector
    from services.logstream.main import register as logstream
    from services.logstream.relay import Relay
    from services.logstream.webhooks import Deliverer
    from services.runner.handlers import register as runner
    from shared.worker import make_context

    found: dict[Service, NatsBroker] = {"api": Bus(settings).broker}
    for name, register in (("detector", detector), ("builder", builder), ("runner", runner)):
        ctx = make_context(name, settings)  # type: ignore[arg-type]
        register(ctx)
        found[name] = ctx.broker  # type: ignore[index]
    ctx = make_context("logstream", settings)
    logstream(ctx, Relay(ctx))
    Deliverer(ctx).register()
    found["logstream"] = ctx.broker
    return found


def render() -> str:
    # Building the apps connects to nothing; these URLs are never dialled (4222 is what the document shows).
    settings = Settings(nats_url="nats://localhost:4222", database_url="postgresql://docs@localhost/docs")
    apps = brokers(settings)
    for route in ROUTES:
        for producer in route.producers:
            apps[producer].publisher(
                route.subject.value, schema=route.payload, title=f"{producer}: {route.subject.value}",
                description=f"{route.kind} ({route.payload.__name__}); consumed by {', '.join(route.consumers)}",
            )
    spec = AsyncAPI(
        *apps.values(), title="Portside", version="0.1.0",
        description="Every NATS subject Portside uses: internal commands and facts on `deploy.>`, and the public, "
                    "versioned events on `portside.events.v1.>` (stream PORTSIDE_EVENTS) that outside subscribers "
                    "may rely on.",
    ).to_specification()
    return json.dumps(json.loads(spec.to_json()), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}", file=sys.stderr)

"""The message contract table (shared/messaging/contract.py) against the code: every subject has one row,
the code publishes only what its service is listed as producing, no subject is spelled as a string, each
worker subscribes exactly what it consumes, publish() refuses a wrong payload, and the README shows the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import Settings
from shared.messaging.contract import ROUTE, ROUTES, consumed_by, readme_section
from shared.messaging.events import BuildRequested, Failure
from shared.messaging.public import PublicEvent
from shared.messaging.streams import make_broker, publish
from shared.messaging.subjects import PublicSubject, Subject

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("api", "detector", "builder", "runner", "logstream")
# `ctx.publish(Subject.X, ...)`, `bus.send(Subject.X, ...)`, `bus.request(\n Subject.X, ...)`
PUBLISH = re.compile(r"\.(?:publish|send|request)\(\s*Subject\.([A-Z_]+)")


def test_every_subject_has_one_row_with_a_payload_named_after_it() -> None:
    assert [route.subject for route in ROUTES] == list(Subject) + list(PublicSubject)
    for route in ROUTES:
        if route.kind == "public":
            entity, event = route.subject.value.removeprefix("portside.events.v1.").split(".")
            assert route.payload.__name__ == entity.capitalize() + event.title().replace("_", "")
            assert issubclass(route.payload, PublicEvent) and route.producers and route.consumers
            continue
        _, stage, event = route.subject.value.split(".")
        assert route.payload.__name__ == stage.capitalize() + event.capitalize()
        assert (route.kind == "command") == (event == "requested")
        assert route.producers and route.consumers


def test_a_command_that_fails_for_good_is_answered_by_a_fact_its_consumer_publishes() -> None:
    for route in ROUTES:
        if route.kind == "command":
            assert route.fails_with is not None, route.subject
        if route.fails_with is not None:
            failure = ROUTE[route.fails_with]
            assert failure.kind == "fact" and "api" in failure.consumers and issubclass(failure.payload, Failure)
            assert set(route.consumers) - {"api"} <= set(failure.producers)


def test_code_publishes_only_what_the_table_says_its_service_produces() -> None:
    published: dict[str, set[Subject]] = {}
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for name in PUBLISH.findall(path.read_text()):
                published.setdefault(service, set()).add(Subject[name])
    for service, subjects in published.items():
        for subject in subjects:
            if ROUTE[subject].kind == "command" and service == "api":
                continue
            assert service in ROUTE[subject].producers, f"{service} publishes {subject} but the table says not"
    # And every row's producer publishes it, itself or through the worker wrapper's failure fact.
    by_wrapper = {route.fails_with for route in ROUTES if route.fails_with}
    for route in ROUTES:
        if route.kind == "public":  # staged in a transaction, not published: the next test
            continue
        for producer in route.producers:
            assert route.subject in published.get(producer, set()) or route.subject in by_wrapper, route.subject


def test_public_events_are_staged_only_where_the_table_says() -> None:
    """A service stages a public event itself (`stage(session, PublicSubject.X`), or through the one status-changing
    function, shared/db/repository.transition, which stages status, crash, build and port events."""
    stage = re.compile(r"stage\(\s*session,\s*(?:PublicSubject|P)\.([A-Z_]+)")
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for name in stage.findall(path.read_text()):
                assert service in ROUTE[PublicSubject[name]].producers, f"{service} stages {name}"
    from_transition = set(stage.findall((ROOT / "shared/db/repository.py").read_text()))
    assert from_transition == {"DEPLOYMENT_STATUS_CHANGED", "DEPLOYMENT_CRASHED", "BUILD_STARTED", "BUILD_FINISHED",
                               "PORT_ASSIGNED", "PORT_FREED"}


def test_no_subject_is_spelled_as_a_string_literal() -> None:
    literal = re.compile(r"""["']deploy\.[a-z*>]""")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("services", "shared")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "subjects.py" and literal.search(path.read_text())
    ]
    assert offenders == []


def test_each_worker_subscribes_exactly_what_the_table_says_it_consumes() -> None:
    from services.builder.handlers import register as builder
    from services.detector.handlers import register as detector
    from services.logstream.main import register as logstream
    from services.logstream.relay import Relay
    from services.runner.handlers import register as runner
    from shared.worker import make_context

    settings = Settings(nats_url="nats://127.0.0.1:9", database_url="postgresql+asyncpg://x@127.0.0.1:9/x")
    for name, register in (("detector", detector), ("builder", builder), ("runner", runner), ("logstream", None)):
        ctx = make_context(name, settings)  # type: ignore[arg-type]
        if register is None:
            logstream(ctx, Relay(ctx))
        else:
            register(ctx)  # subscribe() raises when the handlers differ from the table
        [subscriber] = ctx.broker.subscribers
        filtered = set(subscriber.config.filter_subjects)  # type: ignore[attr-defined]
        assert filtered == {s.value for s in consumed_by(name)}, name  # type: ignore[arg-type]


async def test_publish_refuses_a_payload_of_the_wrong_type() -> None:
    broker = make_broker(Settings(nats_url="nats://127.0.0.1:9"), "test")
    with pytest.raises(TypeError, match="BuildFailed"):
        await publish(broker, Settings(), Subject.BUILD_FAILED, BuildRequested(deployment_id=1))


def test_readme_shows_the_contract_table() -> None:
    # Regenerate with `make docs` (python -m shared.messaging.contract) after changing the table.
    assert readme_section() in (ROOT / "README.md").read_text()

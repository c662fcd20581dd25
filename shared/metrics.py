"""Every Prometheus metric Portside exports, defined once. Each process serves the ones it moves on its own
/metrics (shared/observe.py): the API requests and deployments by status, workers jobs and their durations,
logstream the lines it relayed, every service the lag of the durable consumers it reads."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from shared.config import Settings
from shared.messaging.subjects import Subject

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter(
    "portside_http_requests", "HTTP requests answered, by route template (not the raw path) and status.",
    ["service", "method", "route", "status"],
)
JOBS = Counter(
    "portside_jobs", "Messages handled by a worker, by kind (subject) and outcome: ok, retried (a delivery failed "
    "and will be tried again), failed (the last delivery failed), rejected (the payload broke the contract).",
    ["service", "kind", "outcome"],
)
# Detection takes milliseconds to seconds, a build seconds to half an hour, a start up to the ready timeout.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800)
JOB_SECONDS = Histogram(
    "portside_job_duration_seconds", "How long a handler ran, by stage (detect, generate, build, start, stop, "
    "delete, follow), whatever its outcome.", ["stage"], buckets=DURATION_BUCKETS,
)
CONSUMER_PENDING = Gauge(
    "portside_consumer_pending_messages", "JetStream consumer lag: messages on the stream the durable consumer "
    "has not been delivered yet (num_pending), read at scrape time.", ["consumer"],
)
CONSUMER_ACK_PENDING = Gauge(
    "portside_consumer_ack_pending_messages", "Messages delivered to the durable consumer and not yet acknowledged "
    "(jobs in progress), read at scrape time.", ["consumer"],
)
DEPLOYMENTS = Gauge("portside_deployments", "Deployments by status, read from Postgres at scrape time.", ["status"])
LOG_LINES = Counter("portside_log_lines_relayed", "Container log lines relayed to the logs stream.", ["source"])
APP_SAMPLES = Counter("portside_app_samples", "Per-app usage samples the runner wrote (one per compose service).")

# The stage a handler's duration counts under. The runner starts what the builder built (build.completed),
# logstream follows what the runner started (run.completed); otherwise the subject's middle word.
_STAGE_OVERRIDES = {Subject.BUILD_COMPLETED: "start", Subject.RUN_REQUESTED: "start", Subject.RUN_COMPLETED: "follow"}


def stage_of(subject: Subject) -> str:
    return _STAGE_OVERRIDES.get(subject) or subject.value.split(".")[1]


async def refresh_consumer_lag(js: JetStreamContext, settings: Settings, consumers: Iterable[str]) -> None:
    """Read num_pending and num_ack_pending of each durable consumer; one that does not exist yet is skipped."""
    for consumer in consumers:
        try:
            info = await js.consumer_info(settings.stream_name, consumer, timeout=2)
        except (NatsError, TimeoutError) as exc:  # a missing consumer or a hiccup leaves the last figure
            log.debug("no lag figure for consumer %s: %s", consumer, exc)
            continue
        CONSUMER_PENDING.labels(consumer).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(consumer).set(info.num_ack_pending or 0)


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    return generate_latest(registry)

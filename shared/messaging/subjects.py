"""Every NATS subject Portside uses. Grammar: `deploy.<stage>.<event>`; commands end in `requested`,
facts are past tense. Code never spells a subject as a string literal; who publishes and who consumes each
one, and its payload, is the table in shared/messaging/contract.py."""

from __future__ import annotations

from enum import StrEnum


class Subject(StrEnum):
    DETECT_REQUESTED = "deploy.detect.requested"
    DETECT_COMPLETED = "deploy.detect.completed"
    DETECT_FAILED = "deploy.detect.failed"

    GENERATE_REQUESTED = "deploy.generate.requested"
    GENERATE_COMPLETED = "deploy.generate.completed"
    GENERATE_FAILED = "deploy.generate.failed"

    BUILD_REQUESTED = "deploy.build.requested"
    BUILD_COMPLETED = "deploy.build.completed"
    BUILD_FAILED = "deploy.build.failed"

    RUN_REQUESTED = "deploy.run.requested"
    RUN_COMPLETED = "deploy.run.completed"
    RUN_FAILED = "deploy.run.failed"

    STOP_REQUESTED = "deploy.stop.requested"
    STOP_COMPLETED = "deploy.stop.completed"
    STOP_FAILED = "deploy.stop.failed"

    DELETE_REQUESTED = "deploy.delete.requested"
    DELETE_COMPLETED = "deploy.delete.completed"
    DELETE_FAILED = "deploy.delete.failed"


class PublicSubject(StrEnum):
    """Facts for subscribers outside Portside, on their own stream (retention PORTSIDE_EVENTS_MAX_AGE_HOURS).
    Grammar: `portside.events.v1.<entity>.<event>`, past tense; the version changes only with a breaking payload."""

    DEPLOYMENT_STATUS_CHANGED = "portside.events.v1.deployment.status_changed"
    DEPLOYMENT_CRASHED = "portside.events.v1.deployment.crashed"
    DEPLOYMENT_DELETED = "portside.events.v1.deployment.deleted"
    BUILD_STARTED = "portside.events.v1.build.started"
    BUILD_FINISHED = "portside.events.v1.build.finished"
    PORT_ASSIGNED = "portside.events.v1.port.assigned"
    PORT_FREED = "portside.events.v1.port.freed"
    REPOSITORY_REGISTERED = "portside.events.v1.repository.registered"

    @property
    def short(self) -> str:
        """`deployment.crashed`: what webhooks and `portside events` filter on."""
        return self.value.removeprefix(EVENTS_PREFIX + ".")


EVENTS_PREFIX = "portside.events.v1"
EVENTS_WILDCARD = f"{EVENTS_PREFIX}.>"
# Everything on the deploy stream; one wildcard so the stream never misses a new subject.
DEPLOY_WILDCARD = "deploy.>"
# Log lines live on their own stream (different retention); one subject per deployment.
LOGS_PREFIX = "logs"
LOGS_WILDCARD = f"{LOGS_PREFIX}.>"


def logs_subject(deployment_id: int) -> str:
    return f"{LOGS_PREFIX}.{deployment_id}"

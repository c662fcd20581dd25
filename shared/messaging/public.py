"""Public event payloads: what an outside subscriber (`portside events`, a webhook, a nats-py script) reads on
`portside.events.v1.<entity>.<event>`. One frozen model per subject, named after it (`deployment.crashed` ->
DeploymentCrashed). They are written to the outbox in the transaction of the change they describe
(shared/messaging/outbox.py) and published from there once; `event_id` lets a receiver drop a repeat."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field


class PublicEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    event_id: str = Field(default_factory=lambda: uuid4().hex)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class DeploymentStatusChanged(PublicEvent):
    """Every status change of a deployment, from whichever service made it (API, workers, reconciler, watcher)."""

    deployment_id: int
    previous_status: str | None
    status: str
    message: str | None = None
    error_code: str | None = None


class DeploymentCrashed(PublicEvent):
    """The app's container died (or never became ready): the deployment is `crashed`."""

    deployment_id: int
    exit_code: int | None = None
    error_code: str | None = None
    message: str | None = None


class DeploymentDeleted(PublicEvent):
    """The deployment is gone: its containers, network and images removed (volumes too with `purge`), its row
    deleted. The last event about it; `owner_id` says whose it was, since nothing can be looked up any more."""

    deployment_id: int
    repository_id: int
    repo_name: str
    owner_id: int | None = None
    purged: bool = False


class BuildStarted(PublicEvent):
    deployment_id: int


class BuildFinished(PublicEvent):
    deployment_id: int
    succeeded: bool
    duration_seconds: float | None = None
    image_tag: str | None = None
    error_code: str | None = None


class PortAssigned(PublicEvent):
    deployment_id: int
    port: int


class PortFreed(PublicEvent):
    deployment_id: int
    port: int


class RepositoryRegistered(PublicEvent):
    repository_id: int
    name: str
    url: str | None = None
    branch: str | None = None

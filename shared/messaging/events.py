"""Event payloads, one frozen model per subject, named after it (`deploy.build.failed` -> BuildFailed).
IDs travel in the payload; `correlation_id` follows a request through every stage. Which subject carries
which payload is the table in shared/messaging/contract.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from shared.detection import Detection


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    correlation_id: str = Field(default_factory=lambda: uuid4().hex)


class Failure(Event):
    """Shared shape of every `*.failed` fact: a code the client can branch on and a sentence for people."""

    error_code: str
    message: str


# detect
class DetectRequested(Event):
    repository_id: int
    app_path: str = ""


class DetectCompleted(Event):
    repository_id: int
    app_path: str = ""
    detection: Detection


class DetectFailed(Failure):
    repository_id: int


# generate
class GenerateRequested(Event):
    deployment_id: int
    # False: ignore the repository's own Dockerfile and compose file and build from Portside's plan.
    use_repo_dockerfile: bool = True


class GenerateCompleted(Event):
    deployment_id: int


class GenerateFailed(Failure):
    deployment_id: int


# build
class BuildRequested(Event):
    deployment_id: int


class BuildCompleted(Event):
    deployment_id: int
    image_id: str
    image_tag: str
    build_seconds: float


class BuildFailed(Failure):
    deployment_id: int


# run
class RunRequested(Event):
    deployment_id: int
    # Start this image instead of the latest build (rollback).
    image_tag: str | None = None


class RunCompleted(Event):
    deployment_id: int
    container_id: str
    port: int
    url: str


class RunFailed(Failure):
    deployment_id: int


# stop
class StopRequested(Event):
    deployment_id: int


class StopCompleted(Event):
    deployment_id: int


class StopFailed(Failure):
    deployment_id: int


# delete
class DeleteRequested(Event):
    deployment_id: int
    # Also remove the deployment's volumes (its database data).
    purge: bool = False


class DeleteCompleted(Event):
    deployment_id: int


class DeleteFailed(Failure):
    deployment_id: int


class LogLine(BaseModel):
    """One line of build or app output, stored on the logs stream (not a deploy event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    deployment_id: int
    source: Literal["build", "app", "system"]
    line: str
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Build step counter ("Step 3/9"), for a progress bar.
    step: int | None = None
    total_steps: int | None = None

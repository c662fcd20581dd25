"""Tables. Alembic migrations in shared/migrations own the schema; these mirror it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db.base import Base
from shared.db.status import PORT_HOLDING, DeploymentStatus

_PORT_HOLDING_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in PORT_HOLDING) + ")"


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))  # admin | member | viewer
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class RefreshToken(Base):
    """One per login; `refresh` spends it and issues the next one (rotation). A spent token used again
    revokes the whole family, since only a thief would replay it."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ApiToken(Base):
    """A personal API token (CLI, CI): shown once, stored as a SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str | None] = mapped_column(Text)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RateLimitHit(Base):
    """One counted request (a login attempt, a deploy) under a limit's key: the per-minute limits live here, not in
    an API process, so they hold across API replicas (services/api/auth.py RateLimiter)."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())


class Repository(TimestampMixin, Base):
    __tablename__ = "repositories"
    __table_args__ = (
        Index("uq_repositories_preview", "preview_of", "preview_number", unique=True,
              postgresql_where=text("preview_of IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # Who registered it; None for rows from before users existed (only admins see those).
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text, unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(String(255))
    # Verifies push and pull-request deliveries (POST /api/hooks/git/{id}); encrypted with shared/secrets.py.
    hook_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The newest commit a push (or the poller) deployed or is deploying: an older or repeated one does nothing.
    deploy_sha: Mapped[str | None] = mapped_column(String(64))
    # Whether preview deployments get this repository's secret variables (never by default).
    preview_secrets: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # A preview is a repository of its own: the pull request's checkout, removed when it closes.
    preview_of: Mapped[int | None] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    preview_number: Mapped[int | None] = mapped_column(Integer)
    # The commit the API's clone is at (set by clone and pull): a worker without that clone on its disk fetches
    # exactly this commit (shared/git.py), so what it builds is what the API registered.
    commit_sha: Mapped[str | None] = mapped_column(String(64))

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="repository", cascade="all, delete-orphan", passive_deletes=True
    )


class GitDelivery(Base):
    """A webhook delivery seen for a repository: the same delivery id twice is answered, not acted on."""

    __tablename__ = "git_deliveries"
    __table_args__ = (
        UniqueConstraint("repository_id", "delivery_id", name="uq_git_deliveries_repository_delivery"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(Text)
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DetectionRecord(Base):
    """One app directory's detection (shared.detection.Detection as JSON), one row per (repository, app_path):
    written by the detector in one INSERT ... ON CONFLICT, read through shared.db.repository.load_detection,
    which validates it and refuses another schema_version."""

    __tablename__ = "detections"
    __table_args__ = (UniqueConstraint("repository_id", "app_path", name="uq_detections_repository_app_path"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    app_path: Mapped[str] = mapped_column(Text, server_default="")
    schema_version: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    detected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Deployment(TimestampMixin, Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_repository_id", "repository_id"),
        Index("ix_deployments_status", "status"),
        Index("ix_deployments_assigned_port", "assigned_port"),
        # A port is held by at most one active deployment: the database decides, not a read-then-write.
        Index(
            "uq_deployments_active_port",
            "assigned_port",
            unique=True,
            postgresql_where=text(_PORT_HOLDING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    repo_name: Mapped[str] = mapped_column(String(255))
    stack: Mapped[str | None] = mapped_column(String(64))
    framework: Mapped[str | None] = mapped_column(String(64))
    package_manager: Mapped[str | None] = mapped_column(String(64))
    app_path: Mapped[str] = mapped_column(Text, server_default="")
    confidence_score: Mapped[int | None] = mapped_column(Integer)
    internal_port: Mapped[int | None] = mapped_column(Integer)
    detected_db: Mapped[str | None] = mapped_column(String(64))
    assigned_port: Mapped[int | None] = mapped_column(Integer)
    requested_port: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), server_default=DeploymentStatus.GENERATING.value)
    docker_path: Mapped[str | None] = mapped_column(Text)
    dockerfile_content: Mapped[str | None] = mapped_column(Text)
    compose_content: Mapped[str | None] = mapped_column(Text)
    dockerignore_content: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    image_id: Mapped[str | None] = mapped_column(String(128))
    image_tag: Mapped[str | None] = mapped_column(String(255))
    build_seconds: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    container_id: Mapped[str | None] = mapped_column(String(128))
    # Relative to the app directory, in `docker compose -f` order (a repo's own compose file, then Portside's).
    compose_files: Mapped[list[str]] = mapped_column(
        JSONB, server_default=text("'[\".deployment/docker-compose.yml\"]'::jsonb")
    )
    app_service: Mapped[str] = mapped_column(String(128), server_default="app")
    image_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    previous_image_tag: Mapped[str | None] = mapped_column(String(255))
    # The image of the last successful start: what a failed redeploy falls back to.
    running_image_tag: Mapped[str | None] = mapped_column(String(255))
    cpu_limit: Mapped[float | None] = mapped_column(Float)
    memory_limit: Mapped[str | None] = mapped_column(String(32))
    # The passwords Portside generated for the backing services, encrypted (shared/secrets.py::seal_generated).
    generated_secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Where the proxy sends this deployment's traffic (container address:port on its network), set by the runner
    # once a container is healthy; None when nothing serves. shared.proxy builds Caddy's routes from it.
    upstream: Mapped[str | None] = mapped_column(String(255))

    repository: Mapped[Repository] = relationship(back_populates="deployments")


class DeploymentEvent(Base):
    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment_id", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EnvVar(Base):
    """A deployment's environment variable; the value is always encrypted at rest (shared/secrets.py)."""

    __tablename__ = "deployment_env"
    __table_args__ = (Index("uq_deployment_env_key", "deployment_id", "key", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    secret: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    build: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class AppSample(Base):
    """One sample of one compose service of a running deployment, taken by the runner every
    PORTSIDE_METRICS_INTERVAL_SECONDS; `sampled_at` is the start of the interval, so replicas that sample the
    same round write one row. The newest PORTSIDE_METRICS_HISTORY_SAMPLES rounds per deployment are kept."""

    __tablename__ = "app_samples"
    __table_args__ = (
        UniqueConstraint("deployment_id", "service", "sampled_at", name="uq_app_samples_round"),
        Index("ix_app_samples_deployment_time", "deployment_id", "sampled_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    service: Mapped[str] = mapped_column(String(255))
    sampled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cpu_percent: Mapped[float | None] = mapped_column(Float)
    memory_mb: Mapped[float | None] = mapped_column(Float)
    # Counters since the container started, as the engine reports them.
    network_rx_bytes: Mapped[int | None] = mapped_column(BigInteger)
    network_tx_bytes: Mapped[int | None] = mapped_column(BigInteger)


class OutboxEvent(Base):
    """A public event written in the transaction of the change it describes; the outbox relay
    (shared/messaging/outbox.py) publishes it with its id as Nats-Msg-Id, then deletes it."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Webhook(TimestampMixin, Base):
    """A user's outgoing webhook: public events it may see, POSTed to `url`, signed with its secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # Short public subjects (`deployment.crashed`) or "*" for every one.
    events: Mapped[list[str]] = mapped_column(JSONB)
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)


class WebhookDelivery(Base):
    """One event for one webhook: pending until a POST answered 2xx (delivered) or the attempts ran out (failed)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DomainName(Base):
    """A host name the proxy routes to a deployment; the unique index makes a name belong to one deployment."""

    __tablename__ = "deployment_domains"
    __table_args__ = (
        Index("uq_deployment_domains_name", "name", unique=True),
        Index("ix_deployment_domains_deployment_id", "deployment_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(253))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Release(Base):
    """What ran after a successful start: the image and the configuration (files, limits, encrypted variables),
    so a rollback restores both."""

    __tablename__ = "deployment_releases"
    __table_args__ = (Index("ix_deployment_releases_deployment_id", "deployment_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    image_tag: Mapped[str] = mapped_column(String(255))
    dockerfile_content: Mapped[str | None] = mapped_column(Text)
    compose_content: Mapped[str | None] = mapped_column(Text)
    dockerignore_content: Mapped[str | None] = mapped_column(Text)
    cpu_limit: Mapped[float | None] = mapped_column(Float)
    memory_limit: Mapped[str | None] = mapped_column(String(32))
    # [{"key", "value_encrypted" (base64 of the stored ciphertext), "secret", "build"}]: never plain values.
    env: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

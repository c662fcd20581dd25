"""Request and response bodies (DTO families: XCreate / XPublic / XsPublic) and the success envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

T = TypeVar("T")


def _no_nul(value: object) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters (\\u0000)")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    elif isinstance(value, list):
        for item in value:
            _no_nul(item)


class RequestBody(BaseModel):
    """Every request body: PostgreSQL cannot store a NUL character, so one is a 422 here, never a 500 later."""

    @model_validator(mode="before")
    @classmethod
    def refuse_nul_characters(cls, data: object) -> object:
        _no_nul(data)
        return data


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    data: T


class RepositoryCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(default=None, description="Absolute path of a local directory")
    url: str | None = Field(default=None, description="A git URL to clone")
    branch: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def exactly_one_source(self) -> RepositoryCreate:
        if bool(self.path) == bool(self.url):
            raise ValueError("give exactly one of `path` (a local directory) or `url` (a git repository)")
        return self


class RepositoryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    path: str
    url: str | None
    branch: str | None
    # The newest commit a push or the poller deployed (or is deploying); None until one did.
    deploy_sha: str | None = None
    # Whether preview deployments get this repository's secret variables.
    preview_secrets: bool = False
    # Set on a preview: the repository and pull request number it previews.
    preview_of: int | None = None
    preview_number: int | None = None
    commit_sha: str | None = Field(
        default=None, description="The commit the clone is at (set on register and pull); workers build exactly this")
    created_at: datetime


class RepositoryUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    preview_secrets: bool | None = Field(
        default=None, description="Copy secret variables into preview deployments (off by default: a pull request "
        "from anyone could read them)",
    )


class HookDeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    delivery_id: str
    provider: str
    event: str
    ref: str | None
    commit_sha: str | None
    # What the delivery did, once it is done ("deploying ...", "nothing to do: ...", "failed: CODE: ..."); None
    # while it runs.
    outcome: str | None
    created_at: datetime


class HookPublic(BaseModel):
    """Where the git host sends deliveries and the secret it signs them with."""

    url: str = Field(description="Path of the webhook on this API; prefix it with the address the git host reaches")
    secret: str
    deliveries: list[HookDeliveryPublic] = Field(description="The newest deliveries first (at most 20)")


class HookReceived(BaseModel):
    delivery_id: str
    provider: str
    event: str
    # accepted: acted on in the background (its outcome shows in GET /api/repositories/{id}/hook);
    # duplicate: this delivery id was seen before; ignored: an event Portside does not act on.
    status: Literal["accepted", "duplicate", "ignored"]


class DetectRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    app_path: str = ""


class GenerateRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    stack: str | None = Field(default=None, description="The stack to build: the detected one, or another stack the "
                              "detection found in the same directory and can plan (its `alternative_plans`); any "
                              "other is refused with UNSUPPORTED_STACK")
    port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Host port to publish the app on (else a free one); refused with PORT_IN_USE or "
        "PORT_OUT_OF_RANGE when it can't be had",
    )
    internal_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port the app listens on in the container (else the detected one)"
    )
    host_port: int | None = Field(
        default=None, ge=1, le=65535, description="Deprecated alias of `port` (the host port)",
        json_schema_extra={"deprecated": True},
    )
    app_path: str = Field(default="", description="Subdirectory of the repository holding the app (monorepos)")
    cpu_limit: float | None = Field(default=None, gt=0, le=256, description="CPUs the app may use (compose `cpus`)")
    memory_limit: str | None = Field(
        default=None, pattern=r"^[1-9][0-9]*[bkmg]$", description="Memory the app may use, e.g. 512m or 2g"
    )
    use_repo_dockerfile: bool = Field(
        default=True,
        description="false: ignore the repository's own Dockerfile / compose file and build from Portside's own plan",
    )

    @model_validator(mode="after")
    def _one_host_port(self) -> GenerateRequest:
        if self.host_port is not None and self.port is not None and self.host_port != self.port:
            raise ValueError("`host_port` is a deprecated alias of `port` (the host port); give only `port`")
        return self

    @property
    def requested_host_port(self) -> int | None:
        return self.port if self.port is not None else self.host_port


class GenerateResult(BaseModel):
    deployment_id: int
    dockerfile: str
    compose: str
    dockerignore: str | None
    docker_path: str | None


class FilesUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    dockerfile: str | None = None
    compose: str | None = None
    dockerignore: str | None = None


class DomainsUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    domains: list[str] = Field(max_length=100, description="host names, e.g. [\"app.example.com\"]")


class DomainsPublic(BaseModel):
    domains: list[str]
    urls: list[str]
    default_domain: str | None = Field(
        default=None, description="`<app>-<id>.<PORTSIDE_BASE_DOMAIN>`: always in `domains`; a PUT neither sets "
                                  "nor removes it")


class ReleasePublic(BaseModel):
    id: int
    image_tag: str
    created_at: datetime
    cpu_limit: float | None
    memory_limit: str | None
    env_keys: list[str]


class DeploymentSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    repository_id: int
    repo_name: str
    stack: str | None
    app_path: str
    port: int | None = Field(validation_alias="assigned_port")
    status: str
    created_at: datetime
    started_at: datetime | None = Field(
        default=None, description="When the app last started (the dashboard's last deploy)")
    container_id: str | None


class DeploymentPublic(BaseModel):
    """Every column, files included."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    repository_id: int
    repo_name: str
    stack: str | None
    framework: str | None
    package_manager: str | None
    app_path: str
    confidence_score: int | None
    internal_port: int | None
    detected_db: str | None
    assigned_port: int | None
    requested_port: int | None
    status: str
    docker_path: str | None
    dockerfile_content: str | None
    compose_content: str | None
    dockerignore_content: str | None
    error_message: str | None
    error_code: str | None
    image_id: str | None
    image_tag: str | None
    image_size_bytes: int | None
    running_image_tag: str | None
    previous_image_tag: str | None
    compose_files: list[str]
    app_service: str
    cpu_limit: float | None
    memory_limit: str | None
    build_seconds: float | None
    exit_code: int | None
    container_id: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    url: str | None = None
    # The proxy's names for it (set with PUT .../domains, plus the PORTSIDE_BASE_DOMAIN default) and their URLs.
    domains: list[str] = Field(default_factory=list)
    urls: list[str] = Field(default_factory=list)


class DeployResult(BaseModel):
    deployment_id: int
    status: str
    container_id: str | None = None
    port: int | None = None
    url: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class StatusPublic(BaseModel):
    deployment_id: int
    status: str
    container_id: str | None
    port: int | None
    url: str | None
    container_state: str | None = None
    health: str | None = None
    uptime_seconds: float | None = None
    cpu_percent: float | None = None
    memory_mb: float | None = None
    memory_limit_mb: float | None = None
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None
    ip_address: str | None = None
    ports: dict[str, list[str]] = Field(default_factory=dict)
    # Swarm: running tasks per node (host name). The figures above are of a task on the node Portside's engine is;
    # tasks on other nodes are counted here, without figures (engine_error says so).
    task_nodes: dict[str, int] = Field(default_factory=dict)
    engine_error: str | None = None


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    message: str | None
    error_code: str | None
    created_at: datetime


# --- Users, tokens, audit ---

Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, Field(min_length=8, max_length=1024)]
RoleName = Literal["admin", "member", "viewer"]


class UserRegister(RequestBody):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password


class UserCreate(UserRegister):
    role: RoleName = "member"


class UserUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    disabled: bool | None = None
    password: Password | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    role: str
    disabled: bool
    created_at: datetime


class LoginRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshRequest(RequestBody):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(max_length=512)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"


class ApiTokenCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="Shown once; Portside keeps only its hash")


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int | None
    email: str | None
    action: str
    target: str | None
    detail: str | None
    ip: str | None
    created_at: datetime


# --- Environment and secrets ---

EnvKey = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class EnvVarIn(RequestBody):
    model_config = ConfigDict(extra="forbid")

    key: EnvKey
    value: str | None = Field(
        default=None, max_length=65536, description="Omit (or send the mask) to keep a secret's stored value"
    )
    secret: bool = False
    build: bool = Field(
        default=False, description="Also available while building (build argument), not only at run time"
    )


class EnvVarPublic(BaseModel):
    key: str
    value: str = Field(description="`********` for secrets")
    secret: bool
    build: bool


class EnvUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    variables: list[EnvVarIn] = Field(max_length=500)


class EnvPublic(BaseModel):
    variables: list[EnvVarPublic]


class ServiceUsage(BaseModel):
    cpu_percent: float | None = None
    memory_mb: float | None = None
    # Bytes since each container started, as the engine counts them; a chart takes differences.
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None


class UsageSample(BaseModel):
    at: datetime
    services: dict[str, ServiceUsage] = Field(description="one entry per compose service that was running")
    total: ServiceUsage = Field(description="the services summed (a figure no service reported stays null)")


class AppMetricsPublic(BaseModel):
    deployment_id: int
    interval_seconds: float
    samples: list[UsageSample]


# --- Webhooks ---
class WebhookCreate(RequestBody):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL Portside POSTs each event to")
    events: list[str] = Field(
        min_length=1, max_length=64,
        description="Short public subjects (`deployment.crashed`, `build.finished`, ...) or `*` for every one",
    )
    secret: str = Field(min_length=16, max_length=256, description="Signs each body: X-Portside-Signature")


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    events: list[str]
    created_at: datetime


class WebhookDeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_id: int
    event_id: str
    subject: str
    status: str = Field(description="pending, delivered, or failed (gave up after PORTSIDE_WEBHOOK_MAX_ATTEMPTS)")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    duration_ms: float | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None

"""Settings for every Portside process, read from the environment (PORTSIDE_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTSIDE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".portside")
    # Unset means "start an embedded server" (see services/supervisor); set means "use this one".
    nats_url: str | None = None
    database_url: str | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    logstream_host: str = "127.0.0.1"
    logstream_port: int = 8081
    # Where published host ports listen; 0.0.0.0 makes apps reachable from other machines.
    bind_address: str = "0.0.0.0"
    # Where the runner reaches a published port to see whether the app answers: this machine's loopback for
    # `portside up`; from a runner in a container, the host (host.docker.internal, see deploy/compose.yaml).
    probe_host: str = "127.0.0.1"
    port_range_start: int = 20000
    port_range_end: int = 40000

    docker_host: str | None = None
    # Where apps run: "single" is one Docker engine with docker compose; "swarm" deploys each app as a Swarm stack
    # (the engine at docker_host must be a Swarm manager) and needs a registry every node can pull from.
    engine: Literal["single", "swarm"] = "single"
    # host:port of the registry the builder pushes app images to (required with engine=swarm): every node pulls
    # from it, so it must be an address the nodes reach, not 127.0.0.1 unless the swarm is one machine.
    registry: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    # A Swarm update is rolled back when a new task fails within this long of starting (update_config.monitor).
    swarm_monitor_seconds: float = Field(default=10.0, gt=0)
    # Health-check failures of a new app task do not count during this long after it starts (its boot time).
    swarm_health_start_seconds: float = Field(default=30.0, ge=0)
    # How an app's port reaches its tasks on Swarm: "mesh" publishes it on the routing mesh (needs IPVS in every
    # node's kernel); "edge" runs Portside's edge proxy (Caddy) on each manager with the port published there in
    # host mode, forwarding over the stack's overlay network to the tasks (DNS round robin, no IPVS); "auto" is
    # mesh where this machine's kernel has IPVS (/proc/net/ip_vs), else edge.
    swarm_publish: Literal["auto", "mesh", "edge"] = "auto"
    # Names this installation's Docker resources (compose projects "<instance>-<id>", labels), so two
    # Portside installations, or test runs, can share one engine without touching each other's containers.
    instance: str = Field(default="portside", pattern=r"^[a-z0-9][a-z0-9-]{0,30}$")
    stream_name: str = "PORTSIDE"
    logs_stream_name: str = "PORTSIDE_LOGS"
    # Public events (portside.events.v1.*) live on their own stream, kept this long for late subscribers.
    events_stream_name: str = "PORTSIDE_EVENTS"
    events_max_age_hours: float = Field(default=168.0, gt=0)
    # The outbox relay publishes at once when Postgres notifies it; this is its fallback poll.
    outbox_poll_seconds: float = Field(default=2.0, gt=0)
    # Outgoing webhooks: attempts per delivery (then it is recorded as given up), the first retry's delay
    # (doubling each time), and how long a receiver may take to answer.
    webhook_max_attempts: int = Field(default=6, ge=1)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long the API waits for a worker's reply to detect/generate before WORKER_TIMEOUT.
    worker_timeout_seconds: float = 30.0
    # JetStream redelivers a message whose worker stopped heart-beating for this long (e.g. was killed).
    ack_wait_seconds: float = 30.0
    # A handler that raises is retried this many deliveries in all, waiting retry_base_seconds, then twice
    # that, ... between them (0.5 + 1 + 2 + 4 s by default); after the last the deployment ends `error`.
    max_deliver: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    build_timeout_seconds: float = 1800.0
    # Caps on every container a build runs its steps in (README "Build limits"). Memory as in compose (512m, 2g;
    # `none`: no cap); swap is not added on top. CPUs may be fractional; unset lets a build use every core, at half
    # the scheduling weight of the apps, so running apps win when the host is busy.
    build_memory: str = Field(default="4g", pattern=r"^([1-9][0-9]*[bkmg]|none)$")
    build_cpus: float | None = Field(default=None, gt=0, le=256)
    # Builds running at once across every builder replica (Postgres advisory locks); a build waits for a slot.
    max_concurrent_builds: int = Field(default=2, ge=1, le=1000)
    # The disk janitor (in the builder) runs this often: it keeps the newest keep_images images per deployment and
    # removes Portside's untagged images (build leftovers) older than build_cache_max_age_hours, and (unless
    # buildkit is off) the BuildKit cache mounts of deleted deployments or unused for build_cache_max_age_hours.
    janitor_interval_seconds: float = Field(default=3600.0, gt=0)
    build_cache_max_age_hours: float = Field(default=24.0, ge=0)
    ready_timeout_seconds: float = 90.0
    # Pre-flight: refuse to build when the Docker data disk has less free space than this.
    min_free_disk_mb: int = 1024
    # The runner compares containers with Postgres this often (and at start).
    reconcile_interval_seconds: float = 60.0
    # A queued job no worker picked up within this long is published again (once), then failed.
    queued_timeout_seconds: float = 300.0
    # An app that Docker restarted this many times in a row is marked crashed and taken down.
    crash_restart_limit: int = 3
    # Images kept per deployment for rollback (the running and the previous one are always kept).
    keep_images: int = 3
    # Registries that Dockerfiles (FROM) and compose files (image:) may pull from; anything else is refused.
    # Docker Hub's official and user images count as docker.io; mcr.microsoft.com hosts the .NET images.
    allowed_registries: list[str] = Field(
        default_factory=lambda: ["docker.io", "mcr.microsoft.com", "ghcr.io", "gcr.io", "quay.io", "public.ecr.aws"]
    )
    # A build whose deployment left `building` (cancelled or stopped) is abandoned; its status is read this often.
    build_cancel_poll_seconds: float = 1.0
    # Registering a local directory (and file:// git URLs) lets a repository read that directory: off unless an
    # administrator turns it on. System directories and Portside's own home are refused even then.
    allow_local_repos: bool = False
    # Git URLs (and every other outgoing URL) whose host resolves to a loopback, private, link-local or multicast
    # address are refused unless this is true.
    allow_private_networks: bool = False
    # A clone larger than this, or slower than the timeout, is stopped and removed.
    max_repo_mb: int = 1024
    clone_timeout_seconds: float = 300.0
    # Check every cloned repository's tracked branch (and open previews) this often with `git ls-remote` and deploy
    # a new commit, for git hosts that can't send webhooks; 0 turns the poller off.
    git_poll_seconds: float = Field(default=0.0, ge=0)
    # Request bodies above this are refused with 413 before they are parsed.
    max_request_bytes: int = 4_000_000
    # Log lines kept per deployment on the logs stream (each line at most max_log_line_bytes): a byte bound.
    max_log_lines_per_deployment: int = 50_000
    max_log_line_bytes: int = 8192
    # Which builder builds images (README "BuildKit"): `on` BuildKit (Debian's 20.10 client at /usr/bin/docker,
    # DOCKER_BUILDKIT=1) with cache mounts for the dependency downloads of generated files; `off` the classic builder
    # through the engine's API; `auto` BuildKit when that client works here and no build memory/CPU cap is set
    # (BuildKit's steps run outside the engine's containers, so the caps would not apply), else classic.
    buildkit: Literal["auto", "on", "off"] = "auto"

    # --- Reverse proxy (Caddy, started by `portside up`, configured only through its admin API) ---
    # Off: apps are reached on their host ports only (Docker publishes them) and redeploys replace the container.
    proxy_enabled: bool = True
    proxy_http_port: int = Field(default=80, ge=1, le=65535)
    proxy_https_port: int = Field(default=443, ge=1, le=65535)
    # Caddy's admin API (host:port on loopback); `portside up` starts an embedded Caddy and sets it when unset.
    proxy_admin: str | None = None
    # Every deployment gets `<app>-<id>.<base_domain>` when set (a wildcard DNS record points it here).
    base_domain: str | None = None
    # Public names get certificates from Let's Encrypt (ACME) with this contact; local names (.localhost, .test,
    # .internal, ...) and every name when acme is off get them from Caddy's internal CA.
    acme: bool = True
    acme_email: str | None = None
    # After the proxy switched to a new container, the old one keeps running this long for requests in flight.
    drain_seconds: float = Field(default=5.0, ge=0)
    # --- Metrics and health (README "Metrics, health and logs") ---
    # Every /metrics answers only `Authorization: Bearer <metrics_token>` when it is set; the API's also answers
    # an admin's token. Unset, the API's /metrics is admin-only and the workers' listeners are open on metrics_host.
    metrics_token: str | None = None
    # Workers (detector, builder, runner) serve /metrics, /healthz and /readyz on metrics_host:metrics_port.
    # `portside up` gives each worker process its own port, counting up from metrics_base_port (0: any free
    # port); it writes them to <home>/metrics-ports.json. A worker started alone listens on metrics_port, or
    # metrics_base_port + its place in (detector, builder, runner) when that is unset.
    metrics_host: str = "127.0.0.1"
    metrics_base_port: int = Field(default=8082, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # The runner samples CPU, memory and network of every running app this often, keeping the newest
    # metrics_history_samples rounds per deployment (720 x 15 s = 3 hours).
    metrics_interval_seconds: float = Field(default=15.0, gt=0)
    metrics_history_samples: int = Field(default=720, ge=1)

    # --- Auth and abuse limits (README "Security model") ---
    # Anyone may create an account while no user exists (that first one is admin); after that only when true.
    open_signup: bool = False
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    # Host headers the API answers (DNS rebinding defence); the API's own bind address is always allowed.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1"])
    # Browser origins allowed to call the API cross-site (CORS and the Origin check); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    login_attempts_per_minute: int = 10  # per account
    login_attempts_per_ip_per_minute: int = 30
    deploys_per_minute: int = 20
    # Where a user comes from for the per-IP limits: the socket peer unless a proxy in front is trusted.
    trust_forwarded_for: bool = False

    @model_validator(mode="after")
    def _swarm_needs_a_registry(self) -> Settings:
        if self.engine == "swarm" and not self.registry:
            raise ValueError("PORTSIDE_ENGINE=swarm needs PORTSIDE_REGISTRY (host:port of a registry every node "
                             "pulls from); see the README's \"Running in production\".")
        return self

    @property
    def proxy_on(self) -> bool:
        """Apps run behind the proxy: it is enabled and a Caddy admin API is known (`portside up` starts one and
        sets PORTSIDE_PROXY_ADMIN; services started one by one without it keep Docker's host ports). Not on
        Swarm: there the routing mesh publishes the port and Swarm swaps tasks itself."""
        return self.proxy_enabled and bool(self.proxy_admin) and self.engine != "swarm"

    def public_url(self, port: int) -> str:
        """Where a user reaches an app published on `port` (localhost when bound to every address)."""
        wildcard = self.bind_address in ("0.0.0.0", "::", "127.0.0.1")
        return f"http://{'localhost' if wildcard else self.bind_address}:{port}"

    @property
    def repos_dir(self) -> Path:
        return self.home / "repos"

    def require_nats_url(self) -> str:
        if not self.nats_url:
            raise RuntimeError("PORTSIDE_NATS_URL is not set; start Portside with `portside up`.")
        return self.nats_url

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("PORTSIDE_DATABASE_URL is not set; start Portside with `portside up`.")
        return self.database_url


@lru_cache
def get_settings() -> Settings:
    return Settings()

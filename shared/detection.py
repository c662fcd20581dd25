"""The detection result: produced by the detector, read by the builder and the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.plan import BuildPlan

# Stored with every detection (table `detections`); raise it when a change makes old rows unreadable, and a
# stored detection of another version reads as missing (the API detects again) instead of as a wrong one.
# 2: detections carry the provider's build plan (`plan`). 3: every stack's provider plans (a version-2 Node, PHP,
# Ruby, Java, .NET, Elixir or Deno detection has no plan, and reads as missing so the API detects it again).
DETECTION_SCHEMA_VERSION = 3


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    reason: str
    # How much this piece of evidence counts toward `confidence` (see services/detector/scoring).
    weight: int = 0


class Detection(BaseModel):
    """What Portside believes about an app directory, and why."""

    model_config = ConfigDict(extra="forbid")

    stack: str = "unknown"
    confidence: int = Field(default=0, ge=0, le=100)
    framework: str | None = None
    package_manager: str | None = None
    runtime_version: str | None = None
    has_dockerfile: bool = False
    has_compose: bool = False
    detected_db: str = "none"
    services: list[str] = Field(default_factory=list)
    internal_port: int | None = None
    start_command: str | None = None
    build_command: str | None = None
    # Where a build writes a static site (SPA `dist`, CRA `build`; "." for plain HTML). Set when the app is served
    # as files by a web server on `internal_port` 80 and has no start command of its own.
    output_dir: str | None = None
    start_command_help: str | None = None
    app_path: str = ""
    evidence: list[Evidence] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    alternatives: list[str] = Field(default_factory=list)
    apps: list[Detection] = Field(default_factory=list)
    # In a monorepo: the path (relative to the repo root, like `app_path`) of the app the top-level fields
    # describe; the evidence says why it was picked. None when the directory is itself the app.
    primary_app: str | None = None
    # How the app is built and run, stated by the provider of its language (shared/plan.py); None when nothing
    # can run (`start_command_help` says why) or no provider plans the stack (its own Dockerfile is needed).
    plan: BuildPlan | None = None
    # The plans of the other stacks this directory also holds (`alternatives` that a provider could plan), keyed
    # by stack: what `"stack"` on generate may choose instead of the detected one.
    alternative_plans: dict[str, BuildPlan] = Field(default_factory=dict)

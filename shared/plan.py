"""The build plan: how an app is installed, built, started and served, stated by the detector's provider for its
language and rendered by the builder into a template (services/builder/templates/<stack>/).

The provider that detects a language also plans it (as nixpacks' and railpack's providers do): the plan travels
in the Detection (`Detection.plan`, through the database and the generate event), and the builder never re-derives
a fact the detector decided: it renders the plan (services/builder/plan.py applies only the user's port) and refuses
a detection without one. Every stack in PLANNED_STACKS is planned by its provider
(services/detector/providers/<lang>; registry `PLANNERS`); the helpers two of them share live here."""

from __future__ import annotations

import json
import shlex

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

# Used when the repository names no version: current LTS / stable lines that have official images. Python 3.11:
# the newest line whose wheels every 2023-era pin still has, and one Debian ships as it is (no stand-in).
DEFAULT_VERSIONS = {
    "python": "3.11", "node": "20", "go": "1.24", "rust": "1.83", "java": "21", "dotnet": "8.0",
    "php": "8.4", "ruby": "3.3", "elixir": "1.17", "deno": "2.1.4",
}
DEFAULT_PORTS = {"python": 8000, "node": 3000, "go": 8080, "rust": 8080, "java": 8080, "dotnet": 8080,
                 "php": 8000, "ruby": 3000, "elixir": 4000, "deno": 8000}
# The stacks a provider plans (services/detector/registry.py `PLANNERS`): a detection of one of them without a plan
# could not be built (its `start_command_help` says why); any other stack needs the repository's own Dockerfile.
PLANNED_STACKS = (*DEFAULT_PORTS, "static")
# Static sites are served by an unprivileged nginx on a port above 1024, so no capability is needed.
STATIC_PORT = 8080
# The runtime lines a plan may name in FROM, per stack: each exists on Docker Hub, and `make images`
# (deploy/base-images/build.sh) builds every one of them where no registry answers. Any other requested line
# becomes the nearest newer one here (or the newest), and the plan says so.
IMAGE_VERSIONS = {
    "python": ["3.11", "3.12", "3.13"],
    "node": ["18", "20", "22", "24"],
    "go": ["1.22", "1.23", "1.24"],
    "php": ["8.4"],
}
SHELL_CHARS = "$&|;<>*`()"


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class BuildPlan:
    stack: str
    framework: str | None
    package_manager: str
    version: str
    # None for a worker that listens on no port (no EXPOSE, no HEALTHCHECK, no published port).
    port: int | None
    start_command: str
    build_command: str | None
    manifests: list[str] = Field(default_factory=list)
    # Python: production servers the start command needs that the app's requirements lack.
    extra_packages: list[str] = Field(default_factory=list)
    template: str = ""
    # The lockfile-exact dependency install (and, for Node apps with a build, the production-only one).
    install: str = ""
    prod_install: str = ""
    # Where a build writes a static site, served by nginx (None: the app serves itself).
    output_dir: str | None = None
    spa: bool = False
    # Stack specifics: the binary / jar / project / package a template builds and runs.
    artifact: str = ""
    target: str = "."
    locked: bool = True
    build_packages: list[str] = Field(default_factory=list)
    runtime_packages: list[str] = Field(default_factory=list)
    # Lines the template puts in the header: what Portside assumed and how to change it.
    notes: list[str] = Field(default_factory=list)
    # A Node app inside a workspace (npm/yarn/pnpm workspaces, nx, turbo): the build context is the workspace root
    # (`workspace_root`, relative to the app directory, e.g. "../.."), dependencies install there, and the app
    # builds and runs in `workspace_app` (its path from the workspace root, e.g. "apps/web").
    workspace_root: str = ""
    workspace_app: str = ""
    # A pinned tool a template installs: Python's lockfile exporter in a throw-away stage (`uv==0.5.11`); Node's
    # package manager when the image lacks it (`pnpm@8`, the major its lockfile needs; `bun@1`).
    build_tool: str = ""

    @property
    def cmd_json(self) -> str:
        """The start command in exec form when it has no shell syntax, else through `sh -c` with exec."""
        return cmd_json(self.start_command)

    @property
    def static(self) -> bool:
        return self.output_dir is not None


def serving_port(stack: str, internal_port: int | None, static: bool) -> int:
    """The port a plan's container listens on: nginx's for a site built to files, else the app's own (or the
    stack's usual one)."""
    return STATIC_PORT if static else internal_port or DEFAULT_PORTS[stack]


def cmd_json(command: str) -> str:
    if any(ch in command for ch in SHELL_CHARS):
        return json.dumps(["sh", "-c", f"exec {command}"])
    return json.dumps(shlex.split(command))


def major_minor(version: str | None, default: str) -> str:
    if not version:
        return default
    digits = version.strip().lstrip("^~>=v ").split(".")
    if not digits or not digits[0].isdigit():
        return default
    return ".".join(digits[:2]) if len(digits) > 1 and digits[1].isdigit() else digits[0]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def image_version(stack: str, requested: str, notes: list[str]) -> str:
    """`requested` when a base image of that line exists, else the nearest newer line (the newest as a last
    resort), with a note saying which."""
    lines = IMAGE_VERSIONS.get(stack)
    if not lines or requested in lines:
        return requested
    newer = [v for v in lines if version_key(v) >= version_key(requested)]
    chosen = newer[0] if newer else lines[-1]
    notes.append(f"{stack} {requested} has no base image here: using {chosen}, the nearest "
                 f"{'newer' if newer else 'available'} line that has one.")
    return chosen

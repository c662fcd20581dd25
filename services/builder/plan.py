"""What the templates need to know, derived once from the detection and the files in the app directory."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from shared.detection import Detection

DEFAULT_VERSIONS = {"python": "3.12", "node": "20"}
DEFAULT_PORTS = {"python": 8000, "node": 3000, "static": 80}

NODE_LOCKFILES = {
    "npm": ["package-lock.json", "npm-shrinkwrap.json"],
    "yarn": ["yarn.lock"],
    "pnpm": ["pnpm-lock.yaml"],
    "bun": ["bun.lockb", "bun.lock"],
}
PYTHON_MANIFESTS = ["requirements.txt", "pyproject.toml", "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock"]


@dataclass(frozen=True)
class BuildPlan:
    stack: str
    framework: str | None
    package_manager: str
    version: str
    port: int
    start_command: str
    build_command: str | None
    manifests: list[str] = field(default_factory=list)
    # Python: extra production servers to install when the app's requirements lack them.
    extra_packages: list[str] = field(default_factory=list)

    @property
    def cmd_json(self) -> str:
        """The start command in exec form when it has no shell syntax, else through `sh -c` with exec."""
        if any(ch in self.start_command for ch in "$&|;<>*`"):
            return _json_list(["sh", "-c", f"exec {self.start_command}"])
        return _json_list(shlex.split(self.start_command))


def _json_list(items: list[str]) -> str:
    import json

    return json.dumps(items)


def _major_minor(version: str | None, default: str) -> str:
    if not version:
        return default
    digits = version.strip().lstrip("^~>=v ").split(".")
    if not digits or not digits[0].isdigit():
        return default
    return ".".join(digits[:2]) if len(digits) > 1 and digits[1].isdigit() else digits[0]


def plan_for(detection: Detection, app_dir: Path, port_override: int | None = None) -> BuildPlan:
    """Raises ValueError with a user-facing sentence when the stack cannot be built yet."""
    stack = detection.stack
    port = port_override or detection.internal_port or DEFAULT_PORTS.get(stack, 8080)
    start_command = detection.start_command or ""
    if port_override and detection.internal_port and port_override != detection.internal_port:
        # The detected command binds the detected port; the user asked for another one.
        start_command = re.sub(rf"(?<=[:= ]){detection.internal_port}\b", str(port_override), start_command)
    detection = detection.model_copy(update={"start_command": start_command})
    present = lambda name: (app_dir / name).is_file()  # noqa: E731
    if stack == "python":
        pm = detection.package_manager or "pip"
        manifests = [m for m in PYTHON_MANIFESTS if present(m)]
        start = detection.start_command or ""
        if not start:
            raise ValueError(detection.start_command_help or "No start command found; add a Procfile with a `web:` line.")
        extras = []
        reqs = "\n".join((app_dir / m).read_text(errors="replace").lower() for m in manifests if m.endswith((".txt", ".toml")))
        first = start.split()[0]
        if first in ("gunicorn", "uvicorn") and first not in reqs:
            extras.append({"gunicorn": "gunicorn==23.0.0", "uvicorn": "uvicorn==0.30.6"}[first])
        version = _major_minor(detection.runtime_version, DEFAULT_VERSIONS["python"])
        return BuildPlan(stack, detection.framework, pm, version, port, start, detection.build_command, manifests, extras)
    if stack == "node":
        pm = detection.package_manager or "npm"
        lockfiles = [f for f in NODE_LOCKFILES.get(pm, []) if present(f)]
        manifests = ["package.json", *lockfiles]
        start = detection.start_command or ""
        if not start:
            raise ValueError(detection.start_command_help or 'No start command found; add a "start" script to package.json.')
        major = _major_minor(detection.runtime_version, DEFAULT_VERSIONS["node"]).split(".")[0]
        return BuildPlan(stack, detection.framework, pm, major, port, start, detection.build_command, manifests)
    raise ValueError(
        f"Portside cannot generate a Dockerfile for a '{stack}' app yet; add your own Dockerfile to the repository."
    )


def node_install(plan: BuildPlan, production_only: bool) -> str:
    """The lockfile-exact install for the plan's package manager (falls back to a plain install without one)."""
    locked = len(plan.manifests) > 1
    pm = plan.package_manager
    if pm == "yarn":
        return "yarn install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
    if pm == "pnpm":
        cmd = "pnpm install" + (" --frozen-lockfile" if locked else "") + (" --prod" if production_only else "")
        return f"npm install -g pnpm@9 && {cmd}"
    if pm == "bun":
        cmd = "bun install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
        return f"npm install -g bun@1 && {cmd}"
    base = "npm ci" if locked else "npm install"
    return base + (" --omit=dev" if production_only else "") + " --no-audit --no-fund"


def node_prune(plan: BuildPlan) -> str:
    return {"yarn": "yarn install --production --ignore-scripts --prefer-offline", "pnpm": "pnpm prune --prod"}.get(
        plan.package_manager, "npm prune --omit=dev"
    )

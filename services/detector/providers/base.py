"""The provider interface and the small helpers every provider uses to record decisions."""

from __future__ import annotations

import re
from typing import Protocol

from shared.detection import Detection, Evidence
from shared.plan import BuildPlan
from shared.source import SourceTree

# Evidence weights: how much one kind of fact counts toward `confidence` (see services/detector/scoring.py).
W_MANIFEST = 45      # the language's own manifest (package.json, pyproject.toml, go.mod, ...)
W_LOCKFILE = 10      # a lockfile agrees with the manifest
W_FRAMEWORK = 20     # a framework dependency
W_ENTRYPOINT = 15    # the app object / main file / start script was found
W_VERSION = 5        # a pinned runtime version
W_WEAK = 5           # README lines, file extensions, naming conventions
W_CONFIG = 5         # config files that only refine (ports, services)


class Provider(Protocol):
    """One language. `detect` is a cheap file check; `analyze` fills a Detection with evidence. A provider that
    owns its language's build plan also has `plan(det, src) -> BuildPlan | None` (see `Planner`), run on the
    finished detection; the builder renders that plan."""

    name: str

    def detect(self, src: SourceTree) -> bool: ...

    def analyze(self, src: SourceTree) -> Detection: ...


class Planner(Protocol):
    name: str

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan | None: ...


class Unplannable(Exception):
    """A provider cannot plan the app; the message says what to add (it becomes `start_command_help`)."""


def note(det: Detection, file: str, reason: str, weight: int = 0) -> None:
    """Record why a field has its value; duplicate lines are dropped."""
    ev = Evidence(file=file, reason=reason, weight=weight)
    if ev not in det.evidence:
        det.evidence.append(ev)


# Ports from command lines: `--port 8080`, `-p 8080`, `--bind 0.0.0.0:8080`, `-b :8080`, `${PORT:-5000}`.
_PORT_FLAG = re.compile(
    r"(?:--port[= ]|-p[= ]?|--listen[= ]|-l[= ]?|--http-port[= ])\s*['\"]?(?:\$\{?PORT(?::?-(\d{2,5}))?\}?|(\d{2,5}))\b"
)
_BIND = re.compile(
    r"(?:--bind[= ]|-b[= ]?|--host[= ]\S+\s+--port[= ]|--server\.port[= ]|--listen[= ]|-S\s*)\s*['\"]?"
    r"[\w.\[\]*-]*:(?:\$\{?PORT(?::?-(\d{2,5}))?\}?|(\d{2,5}))\b")
_PORT_ENV_DEFAULT = re.compile(r"\$\{PORT:?-(\d{2,5})\}")


def port_from_command(cmd: str) -> int | None:
    """The port a start command binds, if it names one (a `$PORT` default counts; bare `$PORT` does not)."""
    for rx in (_BIND, _PORT_FLAG):
        m = rx.search(cmd)
        if m and (m.group(1) or m.group(2)):
            return int(m.group(1) or m.group(2))
    m = _PORT_ENV_DEFAULT.search(cmd)
    return int(m.group(1)) if m else None


def as_dict(value: object) -> dict:
    """Manifests are user input: a section that should be a table but is not counts as empty."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def valid_port(value: object) -> int | None:
    try:
        port = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return port if 1 <= port <= 65535 else None

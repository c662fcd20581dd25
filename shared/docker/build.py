"""Image builds through the low-level API, so every output line can be relayed while it happens."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import docker
import docker.constants
from docker.errors import APIError, DockerException
from docker.utils.build import tar

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError

log = logging.getLogger(__name__)
STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)")
# The classic builder runs each RUN step in a container and names it: " ---> Running in 3f2a1b0c9d8e".
RUNNING_RE = re.compile(r"Running in ([0-9a-f]{12,64})")
# The engine's /build takes cpuperiod/cpuquota (a fractional CPU cap); the SDK only lists the older keys.
_LIMIT_KEYS = cast(list[str], docker.constants.CONTAINER_LIMITS_KEYS)
_LIMIT_KEYS.extend(k for k in ("cpuperiod", "cpuquota") if k not in _LIMIT_KEYS)
CPU_PERIOD_US = 100_000
# Without a CPU cap a build step gets half an app's scheduling weight (1024): running apps win on a busy host.
BUILD_CPU_SHARES = 512
MEMORY_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def memory_bytes(value: str | None) -> int | None:
    """`512m` -> bytes (the compose/`docker run` notation); None or `none` for no cap."""
    if not value or value == "none":
        return None
    return int(value[:-1]) * MEMORY_UNITS[value[-1]]


@dataclass(frozen=True)
class BuildLimits:
    """Caps on every container the classic builder runs a step in (PORTSIDE_BUILD_MEMORY, PORTSIDE_BUILD_CPUS)."""

    memory: int | None = None
    cpus: float | None = None

    @classmethod
    def of(cls, settings: Settings) -> BuildLimits:
        return cls(memory_bytes(settings.build_memory), settings.build_cpus)

    def container_limits(self) -> dict[str, int]:
        limits: dict[str, int] = {}
        if self.memory:
            # memswap equal to memory: no swap on top, so the cap is the cap.
            limits.update(memory=self.memory, memswap=self.memory)
        if self.cpus:
            limits.update(cpuperiod=CPU_PERIOD_US, cpuquota=round(self.cpus * CPU_PERIOD_US))
        else:
            limits["cpushares"] = BUILD_CPU_SHARES
        return limits

    def describe(self) -> str:
        memory = f"{self.memory // 1024**2} MB" if self.memory else "no memory cap"
        cpus = f"{self.cpus:g} CPUs" if self.cpus else "every CPU (half weight)"
        return f"{memory}, {cpus}"


@dataclass
class BuildLine:
    text: str
    step: int | None = None
    total_steps: int | None = None


@dataclass
class BuildOutcome:
    image_id: str | None
    succeeded: bool
    error: str | None = None
    failing_step: str | None = None
    tail: list[str] = field(default_factory=list)
    # The failing step's exit code, and whether the engine reported its container killed for memory.
    exit_code: int | None = None
    oom_killed: bool = False


def build_context(app_dir: str, dockerfile_name: str, dockerfile_text: str, ignore_patterns: list[str]) -> IO[bytes]:
    """A tar of the app directory without what .dockerignore excludes, plus the Dockerfile under
    `dockerfile_name` (it may live in an excluded folder such as .deployment/)."""
    archive = tar(Path(app_dir), exclude=list(ignore_patterns), dockerfile=(dockerfile_name, dockerfile_text))
    return cast(IO[bytes], archive)  # a temporary file opened "w+b"


def build_image(
    client: docker.DockerClient,
    *,
    context: IO[bytes],
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    on_line: Callable[[BuildLine], None],
    should_stop: Callable[[], bool] = lambda: False,
    tail_lines: int = 30,
    target: str | None = None,
    buildargs: dict[str, str] | None = None,
    limits: BuildLimits | None = None,
) -> BuildOutcome:
    """Build `tag` from a tar `context` with the classic builder, calling `on_line` for each output line.
    `should_stop` (cheap, thread-safe) is asked before each line and twice a second: True kills the running
    step's container, so even a step that prints nothing ends at once, and the build is abandoned. `limits`
    caps every step's container."""
    running: list[str] = []
    finished = threading.Event()

    def watch() -> None:
        while not finished.wait(0.5):
            if should_stop():
                for container_id in running[-1:]:
                    try:
                        client.api.kill(container_id)
                    except DockerException as exc:  # the build ends by itself then; the stop is still recorded
                        log.warning("could not kill build container %s: %s", container_id[:12], exc)
                return

    watcher = threading.Thread(target=watch, name="build-stop-watch", daemon=True)
    watcher.start()
    try:
        outcome = _build(client, context, dockerfile, tag, labels, on_line, should_stop, tail_lines, target,
                         buildargs, running, limits or BuildLimits())
    finally:
        finished.set()
    if outcome.exit_code == 137 and running:
        outcome.oom_killed = _oom_killed(client, running[-1])
    return outcome


def _oom_killed(client: docker.DockerClient, container_id: str) -> bool:
    """Whether the engine's event log has an `oom` for the step's container (removed by now, its events stay)."""
    until = int(time.time()) + 1
    try:
        events = client.events(since=until - 3600, until=until, decode=True,
                               filters={"container": container_id, "event": "oom"})
        return any(True for _ in events)
    except DockerException as exc:  # the exit code alone still tells the story
        log.info("no event log for build container %s: %s", container_id[:12], exc)
        return False


def _build(
    client: docker.DockerClient,
    context: IO[bytes],
    dockerfile: str,
    tag: str,
    labels: dict[str, str],
    on_line: Callable[[BuildLine], None],
    should_stop: Callable[[], bool],
    tail_lines: int,
    target: str | None,
    buildargs: dict[str, str] | None,
    running: list[str],
    limits: BuildLimits,
) -> BuildOutcome:
    step = total = None
    step_text: str | None = None
    tail: list[str] = []
    image_id: str | None = None
    try:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            dockerfile=dockerfile,
            tag=tag,
            labels=labels,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            target=target,
            buildargs=buildargs or None,
            container_limits=cast(Any, limits.container_limits()),  # the SDK's type lists only its own keys
        )
        for chunk in stream:
            if should_stop():
                return BuildOutcome(None, False, "build cancelled", step_text, tail[-tail_lines:])
            if "error" in chunk:
                if should_stop():
                    return BuildOutcome(None, False, "build cancelled", step_text, tail[-tail_lines:])
                message = chunk.get("error", "").strip()
                on_line(BuildLine(message, step, total))
                tail.append(message)
                code = (chunk.get("errorDetail") or {}).get("code")
                return BuildOutcome(None, False, message, step_text, tail[-tail_lines:],
                                    exit_code=code if isinstance(code, int) else None)
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            text = chunk.get("stream") or chunk.get("status")
            if not text:
                continue
            for raw in text.splitlines():
                line = raw.rstrip()
                if not line:
                    continue
                started = RUNNING_RE.search(line)
                if started:
                    running.append(started[1])
                match = STEP_RE.match(line)
                if match:
                    step, total, step_text = int(match[1]), int(match[2]), line
                tail.append(line)
                del tail[:-tail_lines]
                on_line(BuildLine(line, step, total))
    except APIError as exc:
        message = str(exc.explanation or exc)
        return BuildOutcome(None, False, message, step_text, tail)
    except DockerException as exc:
        raise PortsideError(ErrorCode.DOCKER_UNAVAILABLE, f"The Docker engine stopped answering: {exc}") from exc
    if image_id is None:
        try:
            image_id = client.images.get(tag).id
        except DockerException:
            return BuildOutcome(None, False, "the build produced no image", step_text, tail)
    return BuildOutcome(image_id, True, None, step_text, tail)


def push_image(client: docker.DockerClient, tag: str, on_line: Callable[[BuildLine], None]) -> None:
    """Push `registry/repo:tag` so every Swarm node can pull it; PUSH_FAILED with the registry's sentence."""
    repository, _, version = tag.rpartition(":")
    on_line(BuildLine(f"pushing {tag}"))
    try:
        for chunk in client.api.push(repository, tag=version, stream=True, decode=True):
            if chunk.get("error"):
                raise PortsideError(ErrorCode.PUSH_FAILED, f"The registry refused {tag}: {chunk['error']}. "
                                    "Check that PORTSIDE_REGISTRY answers and accepts pushes from this machine.")
            if chunk.get("status") and not chunk.get("progressDetail"):
                on_line(BuildLine(" ".join(str(chunk[k]) for k in ("id", "status") if chunk.get(k))))
    except DockerException as exc:
        raise PortsideError(ErrorCode.PUSH_FAILED, f"Pushing {tag} failed: {exc}. "
                            "Check that PORTSIDE_REGISTRY answers and accepts pushes from this machine.") from exc

"""Image builds through the low-level API, so every output line can be relayed while it happens."""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
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


# --- BuildKit (PORTSIDE_BUILDKIT) -------------------------------------------------------------------------------
# Debian's 20.10 client has BuildKit built in (`DOCKER_BUILDKIT=1`); the 28.x client wants the buildx plugin.
BUILDKIT_CLIENT = "/usr/bin/docker"
# `--progress=plain` prints one line per event: "#7 [deps 3/4] RUN npm ci", "#7 0.412 added 64 packages", ...
BK_STEP_RE = re.compile(r"^#(\d+) \[(?:[^\]\s]+ )?(\d+)/(\d+)\] (.*)")
BK_ERROR_RE = re.compile(r"^#(\d+) ERROR: (.*)")
BK_EXIT_RE = re.compile(r"exit code: (\d+)")
BK_STOP_GRACE_SECONDS = 2.0


_BUILDKIT_WORKS: set[str | None] = set()


def buildkit_client_ok(docker_host: str | None) -> bool:
    """Whether Debian's 20.10 client is here and its BuildKit answers (a one-line build). A yes is remembered for
    the process; a no is asked again next build (the engine may have been starting)."""
    if docker_host in _BUILDKIT_WORKS:
        return True
    if _probe_buildkit(docker_host):
        _BUILDKIT_WORKS.add(docker_host)
        return True
    return False


def _probe_buildkit(docker_host: str | None) -> bool:
    if not Path(BUILDKIT_CLIENT).exists():
        return False
    env = _buildkit_env(docker_host, {})
    try:
        version = subprocess.run([BUILDKIT_CLIENT, "version", "--format", "{{.Client.Version}}"], env=env,
                                 capture_output=True, text=True, timeout=30, check=False)
        if not version.stdout.startswith("20.10"):
            return False
        # Built to /dev/null: the probe leaves no image behind.
        probe = subprocess.run(
            [BUILDKIT_CLIENT, "build", "--progress=plain", "--output", "type=tar,dest=/dev/null", "-"], env=env,
            input="FROM scratch\nLABEL org.portside.buildkit-probe=1\n", capture_output=True, text=True, timeout=60,
            check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _buildkit_env(docker_host: str | None, buildargs: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    # Build arguments reach the CLI through its environment (`--build-arg NAME` takes the value from there), so a
    # value never shows in the process list.
    env.update(buildargs)
    return env


def build_image_buildkit(
    docker_host: str | None,
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
) -> BuildOutcome:
    """Build `tag` from a tar `context` with BuildKit (Debian's 20.10 client, `--progress=plain`), calling `on_line`
    for each output line. `should_stop` is asked twice a second: True interrupts the client, which cancels the
    solve and with it the running step (killed after BK_STOP_GRACE_SECONDS if it lingers). BuildKit runs its steps
    outside the engine's containers: BuildLimits do not apply here (the builder falls back to the classic builder
    in `auto` when a cap is set)."""
    buildargs = buildargs or {}
    with tempfile.TemporaryDirectory(prefix="portside-buildkit-") as tmp:
        iidfile = Path(tmp) / "iid"
        args = [BUILDKIT_CLIENT, "build", "--progress=plain", "-f", dockerfile, "-t", tag, "--iidfile", str(iidfile)]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        for key in buildargs:
            args += ["--build-arg", key]
        if target:
            args += ["--target", target]
        args.append("-")
        # The client takes stdin for a context only when its first 512 bytes look like an archive, and Python's tar
        # starts with a PAX header (fractional mtimes) that it reads as a Dockerfile: gzip says "archive" at once.
        packed = Path(tmp) / "context.tar.gz"
        context.seek(0)
        with packed.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1) as zipped:
            shutil.copyfileobj(context, zipped, 1024 * 1024)
        try:
            stdin = packed.open("rb")
            proc = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", env=_buildkit_env(docker_host, buildargs))
        except OSError as exc:
            raise PortsideError(ErrorCode.DOCKER_UNAVAILABLE,
                                f"BuildKit's client {BUILDKIT_CLIENT} did not start: {exc}. Set PORTSIDE_BUILDKIT=off "
                                "to build with the classic builder.") from exc
        stopped = threading.Event()
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(0.5):
                if should_stop():
                    stopped.set()
                    proc.send_signal(signal.SIGINT)  # the client cancels the build session, BuildKit the step
                    if not finished.wait(BK_STOP_GRACE_SECONDS):
                        proc.kill()
                    return

        watcher = threading.Thread(target=watch, name="buildkit-stop-watch", daemon=True)
        watcher.start()
        step = total = None
        titles: dict[str, str] = {}
        failing: str | None = None
        error: str | None = None
        tail: list[str] = []
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip()
                if not line:
                    continue
                match = BK_STEP_RE.match(line)
                if match:
                    titles[match[1]] = f"[{match[2]}/{match[3]}] {match[4]}"
                    step, total = int(match[2]), int(match[3])
                failed = BK_ERROR_RE.match(line)
                if failed:
                    failing, error = titles.get(failed[1], failing), failed[2]
                elif line.startswith(("error:", "failed to solve", "ERROR:")) and error is None:
                    error = line
                tail.append(line)
                del tail[:-tail_lines]
                on_line(BuildLine(line, step, total))
            code = proc.wait()
        finally:
            finished.set()
            stdin.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if stopped.is_set() or should_stop():
            return BuildOutcome(None, False, "build cancelled", failing, tail)
        if code != 0:
            message = error or (tail[-1] if tail else f"the BuildKit client ended with exit code {code}")
            exit_code = BK_EXIT_RE.search(message)
            return BuildOutcome(None, False, message, failing, tail,
                                exit_code=int(exit_code[1]) if exit_code else None)
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
        if not image_id:
            return BuildOutcome(None, False, "the build produced no image", failing, tail)
        return BuildOutcome(image_id, True, None, None, tail)

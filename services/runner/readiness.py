"""Is the app up? An HTTP request to the published port must get any HTTP response: a TCP connect alone
proves nothing, because Docker's proxy accepts connections before the app listens. The runner waits here
after `compose up` until the app answers or its container dies. Behind the proxy the request goes to the
container's own address and port (it publishes none), and an image with a HEALTHCHECK must also be `healthy`."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import anyio
from docker import DockerClient
from docker.errors import DockerException
from docker.models.containers import Container

from shared.docker import Owner, docker_client
from shared.docker.containers import app_containers, container_address, last_exit_code, logs_tail
from shared.worker import WorkerContext


def http_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: portside-readiness\r\n\r\n".encode())
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


async def _wait_ready(
    ctx: WorkerContext, deployment_id: int, port: int, service: str,
    internal_port: int | None = None, beside: frozenset[str] = frozenset(),
) -> tuple[str | None, int | None, list[str]]:
    """(container id, exit code if it died, last log lines). Polls container state and HTTP: on the published
    `port`, or with `internal_port` on the container's address. Containers in `beside` (the old version still
    serving during a redeploy) are not the one waited for. Behind the proxy (`internal_port`), an image's
    HEALTHCHECK must say `healthy` too: that is what decides the switch."""
    settings = ctx.settings
    owner = Owner.of(settings, deployment_id)
    deadline = time.monotonic() + settings.ready_timeout_seconds
    client = await anyio.to_thread.run_sync(docker_client, settings)
    try:
        container_id = None
        health_note = ""
        while time.monotonic() < deadline:
            container = await anyio.to_thread.run_sync(_newest, client, owner, service, beside)
            if container is not None:
                container_id = container.id
                state = container.attrs.get("State", {})
                # With a restart policy a dying app flips between restarting and running: one restart
                # before it ever answered already means it cannot start.
                if (
                    state.get("Status") in ("exited", "dead", "restarting")
                    or int(container.attrs.get("RestartCount") or 0) > 0
                ):
                    tail = await anyio.to_thread.run_sync(logs_tail, container, 50)
                    code = await anyio.to_thread.run_sync(last_exit_code, client, container)
                    return container_id, code if code is not None else -1, tail
                health = (state.get("Health") or {}).get("Status")
                host, probe_port = settings.probe_host, port
                if internal_port is not None:
                    host, probe_port = container_address(container) or "", internal_port
                    checks = (state.get("Health") or {}).get("Log") or []
                    if health not in (None, "healthy"):
                        last = str(checks[-1].get("Output", "")).strip()[-300:] if checks else "no check ran yet"
                        health_note = f"HEALTHCHECK: {health} (last check: {last or 'no output'})"
                else:
                    health = None  # on the host port, an HTTP answer is enough (as before the proxy)
                if state.get("Status") == "running" and health in (None, "healthy") and host and (
                    await anyio.to_thread.run_sync(http_answers, host, probe_port)
                ):
                    return container_id, None, []
            await asyncio.sleep(0.25)
        tail = []
        if container_id:
            container = await anyio.to_thread.run_sync(_newest, client, owner, service, beside)
            if container is not None:
                tail = await anyio.to_thread.run_sync(logs_tail, container, 50)
                loopback = await anyio.to_thread.run_sync(loopback_note, container, port, internal_port)
                health_note = loopback or health_note
        return None, None, tail + ([health_note] if health_note else [])
    finally:
        client.close()


def _newest(client: DockerClient, owner: Owner, service: str, beside: frozenset[str]) -> Container | None:
    candidates = [c for c in app_containers(client, owner, service) if c.id not in beside]
    return max(candidates, key=lambda c: c.attrs.get("Created", ""), default=None)


LISTEN = "0A"


def listening(proc_net_tcp: str) -> set[tuple[str, int]]:
    """(address, port) of every listening socket in the text of /proc/net/tcp or /proc/net/tcp6."""
    found = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        raw, _, port = fields[1].partition(":")
        try:
            # The kernel prints each 32-bit word of the address in host (little-endian) byte order.
            packed = b"".join(bytes.fromhex(raw[i:i + 8])[::-1] for i in range(0, len(raw), 8))
            found.add((str(ipaddress.ip_address(packed)), int(port, 16)))
        except ValueError:
            continue
    return found


def loopback_only(listeners: set[tuple[str, int]], port: int) -> str | None:
    """The loopback address the app listens on at `port` when it listens there on nothing else, else None."""
    addresses = [ipaddress.ip_address(a) for a, p in listeners if p == port]
    mapped = [a.ipv4_mapped or a if isinstance(a, ipaddress.IPv6Address) else a for a in addresses]
    if addresses and all(a.is_loopback for a in mapped):
        return str(mapped[0])
    return None


def loopback_note(container: Container, published: int, internal_port: int | None) -> str:
    """Why an app that runs never answered, when the reason is that it listens on loopback inside its container
    (a `localhost` default, or a host chosen only when some platform's variable is set): nothing outside the
    container can reach that. Empty when that is not the case or cannot be told (no `cat` in the image)."""
    port = internal_port or _internal_port(container, published)
    if port is None:
        return ""
    try:
        result = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"], demux=False)
    except DockerException:
        return ""
    # 1: an image without IPv6 has no tcp6; the output is bytes (no stream was asked for).
    if result.exit_code not in (0, 1) or not isinstance(result.output, bytes):
        return ""
    address = loopback_only(listening(result.output.decode("ascii", errors="replace")), port)
    if address is None:
        return ""
    return (f"The app listens on {address}:{port}, inside its container only, where nothing outside can reach "
            f"it: make it listen on 0.0.0.0 (Portside sets HOST=0.0.0.0; this app chooses its address another "
            f"way, e.g. only when a hosting platform's variable is set: set that one with PUT "
            f"/api/deployments/{{id}}/env).")


def _internal_port(container: Container, published: int) -> int | None:
    """The container port that Docker publishes on host port `published`."""
    ports = container.attrs.get("NetworkSettings", {}).get("Ports") or {}
    for key, bindings in ports.items():
        if any(str(b.get("HostPort")) == str(published) for b in bindings or []):
            return int(key.split("/")[0])
    return None

"""Start a whole Portside (`portside up` in a subprocess, with its own home, ports and instance name)
and talk to it like a user: used by the e2e tests and by `make bench`."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from uuid import uuid4

import docker
import httpx

from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE
from shared.docker.containers import list_containers, remove_container
from shared.net import free_tcp_port

ROOT = Path(__file__).resolve().parent.parent
# The first account on a fresh installation is its admin; the e2e tests and the benchmarks act as this user.
ADMIN_EMAIL = "admin@portside.test"
ADMIN_PASSWORD = "correct horse battery staple"


def proxy_env() -> dict[str, str]:
    """extra_env for running_system with the reverse proxy on free high ports and Caddy's internal CA."""
    return {
        "PORTSIDE_PROXY_ENABLED": "true",
        "PORTSIDE_PROXY_HTTP_PORT": str(free_tcp_port()),
        "PORTSIDE_PROXY_HTTPS_PORT": str(free_tcp_port()),
        "PORTSIDE_ACME": "false",
        "PORTSIDE_DRAIN_SECONDS": "2",
        # The generated HEALTHCHECK (3 s timeout, 3 retries) can fail on a machine shared by many test runs; the
        # start waits for it behind the proxy, so give a slow machine more time than the 60 s default here.
        "PORTSIDE_READY_TIMEOUT_SECONDS": "150",
    }


class StartupFailed(RuntimeError):
    """`portside up` exited or its API never answered; the message carries the end of its log."""


@dataclass
class System:
    url: str
    home: Path
    instance: str
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client = field(init=False)
    token: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def sign_up(self) -> None:
        """Register the first user (the admin), log in, and use a personal API token from now on (an access
        token would expire during a long test session)."""
        self.call("POST", "/api/auth/register", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
        self.token = self.api_token(self.login(ADMIN_EMAIL, ADMIN_PASSWORD), "e2e")
        self.client.headers["Authorization"] = f"Bearer {self.token}"

    def login(self, email: str, password: str) -> str:
        """An access token for `email`."""
        resp = httpx.post(f"{self.url}/api/auth/login", json={"email": email, "password": password}, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    def api_token(self, access_token: str, name: str) -> str:
        resp = httpx.post(f"{self.url}/api/tokens", json={"name": name}, timeout=30,
                          headers={"Authorization": f"Bearer {access_token}"})
        assert resp.status_code == 201, resp.text
        return resp.json()["data"]["token"]

    def add_user(self, email: str, role: str, password: str = ADMIN_PASSWORD) -> str:
        """Create a user as the admin; returns a personal API token acting as that user."""
        self.call("POST", "/api/users", json={"email": email, "password": password, "role": role})
        return self.api_token(self.login(email, password), "e2e")

    def give_repository(self, repo_id: int, email: str) -> None:
        """Make `email` the owner of a repository the admin registered (members may not register a server
        directory, and tests have no git host), straight in the embedded database."""
        import asyncio

        import asyncpg

        async def update() -> None:
            # The embedded server asks for the password `portside up` generated into its home.
            password = (self.home / "keys" / "postgres").read_text().strip()
            conn = await asyncpg.connect(host=str(self.home / "postgres"), user="postgres", database="postgres",
                                         password=password)
            try:
                await conn.execute("UPDATE repositories SET owner_id = (SELECT id FROM users WHERE email = $1) "
                                   "WHERE id = $2", email, repo_id)
            finally:
                await conn.close()

        asyncio.run(update())

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, method: str, path: str, expect: int | tuple[int, ...] = (200, 201, 202), **kwargs) -> dict:  # type: ignore[no-untyped-def]
        resp = self.client.request(method, path, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in wanted, f"{method} {path} -> {resp.status_code}: {resp.text}"
        return resp.json()

    def containers(self, engine: docker.DockerClient, deployment_id: int) -> list:
        """Every container of this installation's deployment, running or not (found by label)."""
        filters = {"label": [f"{LABEL_INSTANCE}={self.instance}", f"{LABEL_DEPLOYMENT}={deployment_id}"]}
        return list_containers(engine, filters)

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`portside ARGS` against this system, as its admin (the exit code is the caller's to check)."""
        env = {**os.environ, "PORTSIDE_API_URL": self.url, "PORTSIDE_TOKEN": self.token}
        return subprocess.run([sys.executable, "-m", "services.cli.main", *args], env=env, capture_output=True,
                              text=True, timeout=timeout, cwd=ROOT, check=False)

    def events(self, deployment_id: int) -> list[dict]:
        return self.call("GET", f"/api/deployments/{deployment_id}/events")["data"]

    def deploy(self, deployment_id: int, expect: int | tuple[int, ...] = 200) -> dict:
        """POST deploy?wait=true and return the outcome (data, or the error body when `expect` is an error)."""
        body = self.call(
            "POST", f"/api/deployments/{deployment_id}/deploy", expect=expect, params={"wait": "true"}, timeout=900
        )
        return body.get("data", body)

    def wait_status(self, deployment_id: int, wanted: set[str], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            data = self.call("GET", f"/api/deployments/{deployment_id}")["data"]
            if data["status"] in wanted or time.monotonic() > deadline:
                return data
            time.sleep(0.2)

    def metrics_urls(self) -> dict[str, str]:
        """Where each service serves /metrics, /healthz and /readyz (written by `portside up`)."""
        return json.loads((self.home / "metrics-ports.json").read_text())

    def deploy_path(self, path: Path, **generate: object) -> dict:
        repo = self.call("POST", "/api/repositories", json={"path": str(path)})["data"]
        generated = self.call("POST", f"/api/deployments/generate/{repo['id']}", json=generate)["data"]
        return generated


@dataclass
class Proxied:
    system: System
    https_port: int
    http_port: int

    def client(self) -> httpx.Client:
        # Trust exactly Caddy's root from its storage under PORTSIDE_HOME, as a user would after installing it.
        context = ssl.create_default_context(cafile=str(self.system.home / "caddy/pki/authorities/local/root.crt"))
        return httpx.Client(verify=context, timeout=10)

    def get(self, client: httpx.Client, name: str, path: str = "/") -> httpx.Response:
        """GET https://name:port/ with the name resolved to this machine (the SNI and Host say `name`)."""
        return client.get(f"https://127.0.0.1:{self.https_port}{path}", headers={"Host": name},
                          extensions={"sni_hostname": name})


@dataclass
class Poller:
    """Requests through the proxy every 20 ms in a thread; keeps every answer and every failure."""

    proxied: Proxied
    name: str
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.proxied.client() as client:
            while not self.stop.is_set():
                try:
                    resp = self.proxied.get(client, self.name)
                    if resp.status_code == 200:
                        self.answers.append(resp.text)
                    else:
                        self.failures.append(f"{resp.status_code}: {resp.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{exc.__class__.__name__}: {exc}")
                time.sleep(0.02)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(15)


class SSECollector:
    """Reads an SSE stream in a thread and keeps every (event, data) pair."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}
        self.events: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=None), headers=self.headers) as client, \
                client.stream("GET", self.url) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            event = "message"
            for line in resp.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    self.events.append((event, line.split(":", 1)[1].removeprefix(" ")))
                elif line == "":
                    event = "message"

    def wait_for(self, text: str, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in data for _, data in self.events):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        self._stop.set()


@contextmanager
def running_system(
    home: Path, engine: docker.DockerClient, extra_env: dict[str, str] | None = None, args: list[str] | None = None,
    sign_up: bool = True,
) -> Iterator[System]:
    """`portside up [args]` with embedded NATS and Postgres unless `extra_env` names servers; on exit, stop it
    and remove whatever its instance left. With `sign_up`, the first user (admin) is created and every call
    of the returned System carries that user's token."""
    instance = f"pst-{uuid4().hex[:8]}"
    api_port = free_tcp_port()
    env = {
        **os.environ,
        "PORTSIDE_HOME": str(home),
        "PORTSIDE_API_PORT": str(api_port),
        "PORTSIDE_LOGSTREAM_PORT": str(free_tcp_port()),
        "PORTSIDE_INSTANCE": instance,
        # Each worker's /metrics listener on a free port (listed in <home>/metrics-ports.json).
        "PORTSIDE_METRICS_BASE_PORT": "0",
        # The tests deploy fixture directories and file:// clones.
        "PORTSIDE_ALLOW_LOCAL_REPOS": "true",
        "PORTSIDE_READY_TIMEOUT_SECONDS": "60",
        "PORTSIDE_RECONCILE_INTERVAL_SECONDS": "5",
        # Tests deploy in bursts (50 at once in the slow suite); the limit's own test sets a low one.
        "PORTSIDE_DEPLOYS_PER_MINUTE": "100000",
        # Every test logs in from 127.0.0.1; the per-account limit stays at its default and is tested.
        "PORTSIDE_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE": "100000",
        # The reverse proxy listens on 80/443 by default: tests that want it turn it on with high ports
        # (proxy_env below); the others reach apps on their host ports, as before.
        "PORTSIDE_PROXY_ENABLED": "false",
    }
    env.pop("PORTSIDE_NATS_URL", None)
    env.pop("PORTSIDE_DATABASE_URL", None)
    env.update(extra_env or {})
    home.mkdir(parents=True, exist_ok=True)
    log = home / "up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", *(args or [])],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )
    url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 180  # a loaded 2-core machine starts seven processes slowly
        while True:
            if process.poll() is not None:
                raise StartupFailed(f"portside up exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise StartupFailed(f"the API did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        system = System(url, home, instance, process, log)
        if sign_up:
            system.sign_up()
        yield system
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        remove_instance_resources(engine, instance)


def remove_instance_resources(engine: docker.DockerClient, instance: str) -> None:
    """Whatever a failed test left behind for this instance (never another installation's resources)."""
    label = {"label": f"{LABEL_INSTANCE}={instance}"}
    for container in list_containers(engine, label):
        remove_container(container)
    for network in engine.networks.list(filters=label):
        network.remove()
    for image in engine.images.list(filters=label):
        engine.images.remove(image.id, force=True)
    # Database volumes outlive a delete without ?purge=true by design; a test's installation leaves none.
    for volume in engine.volumes.list(filters=label):
        volume.remove(force=True)

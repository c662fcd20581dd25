"""`portside up`: one supervisor that starts the embedded servers (when no URLs are given), runs the
migrations, starts every service as its own process, restarts one that dies (and says so), and shuts
everything down cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
from rich.console import Console

from shared.config import Settings
from shared.embedded import EmbeddedCaddy, EmbeddedNats, EmbeddedPostgres, start_caddy, start_nats, start_postgres
from shared.migrations import upgrade
from shared.net import free_tcp_port, os_port_free
from shared.secrets import home_key

SERVICES: dict[str, str] = {
    "api": "services.api.main",
    "logstream": "services.logstream.main",
    "detector": "services.detector.main",
    "builder": "services.builder.main",
    "runner": "services.runner.main",
}
# The HTTP services bind one port each, so they run once; workers scale by sharing a durable consumer.
SINGLE = frozenset({"api", "logstream"})
MAX_RESTARTS_PER_MINUTE = 5


@dataclass
class Child:
    name: str
    replica: int
    module: str
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    # A worker's /metrics, /healthz and /readyz listener; kept across restarts so a scraper finds it again.
    metrics_port: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name}#{self.replica}" if self.replica else self.name


def parse_replicas(specs: list[str]) -> dict[str, int]:
    replicas = {name: 1 for name in SERVICES}
    for spec in specs:
        for part in spec.split(","):
            name, _, count = part.partition("=")
            name = name.strip()
            if name not in SERVICES or not count.strip().isdigit() or int(count) < 1:
                raise ValueError(
                    f"bad --replicas value `{part}`; use e.g. detector=3 (services: {', '.join(SERVICES)})"
                )
            if name in SINGLE and int(count) != 1:
                raise ValueError(f"{name} serves HTTP on one port and runs as a single process")
            replicas[name] = int(count)
    return replicas


class Supervisor:
    def __init__(self, settings: Settings, replicas: dict[str, int], console: Console | None = None) -> None:
        self.settings = settings
        self.replicas = replicas
        self.console = console or Console(stderr=True)
        self.nats: EmbeddedNats | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.caddy: EmbeddedCaddy | None = None
        self.children: list[Child] = []
        self.stopping = False

    def say(self, text: str) -> None:
        self.console.print(f"[bold cyan]portside[/] {text}")

    def start_servers(self) -> dict[str, str]:
        home = self.settings.home
        home.mkdir(parents=True, exist_ok=True)
        nats_url, database_url = self.settings.nats_url, self.settings.database_url
        if not nats_url:
            # A generated password: another local process cannot publish deploy commands.
            password = home_key(self.settings, "nats").decode()
            self.nats = start_nats(home / "nats", log_file=home / "nats.log", password=password)
            nats_url = self.nats.url
            self.say(f"embedded nats-server (JetStream) on 127.0.0.1:{self.nats.port} with a generated password, "
                     f"data in {home / 'nats'}")
        if not database_url:
            # A generated password too: the socket may sit in a shared runtime folder (a long PORTSIDE_HOME).
            self.postgres = start_postgres(home / "postgres", password=home_key(self.settings, "postgres").decode())
            database_url = self.postgres.url
            self.say(f"embedded PostgreSQL with a generated password, data in {home / 'postgres'}")
        upgrade(database_url)
        self.say("database schema is up to date")
        env = {"PORTSIDE_NATS_URL": nats_url, "PORTSIDE_DATABASE_URL": database_url, "PORTSIDE_HOME": str(home)}
        if self.settings.proxy_enabled and not self.settings.proxy_admin:
            # Its routes come from Postgres: the runner's reconciler applies them as soon as it starts.
            self.caddy = start_caddy(home / "caddy", log_file=home / "caddy.log")
            env["PORTSIDE_PROXY_ADMIN"] = self.caddy.admin
            self.say(f"embedded caddy (admin API {self.caddy.admin}), certificates in {home / 'caddy'}; "
                     f"proxy on ports {self.settings.proxy_http_port}/{self.settings.proxy_https_port}")
        return env

    def spawn(self, child: Child, env: dict[str, str]) -> None:
        if child.metrics_port is not None:
            env = {**env, "PORTSIDE_METRICS_PORT": str(child.metrics_port)}
        child.process = subprocess.Popen([sys.executable, "-m", child.module], env=env)

    def assign_metrics_ports(self) -> None:
        """Each worker process its own listener port: counting up from PORTSIDE_METRICS_BASE_PORT, or any free
        port when that is 0. Written to <home>/metrics-ports.json for scrapers (and tests) to find."""
        base = self.settings.metrics_base_port
        taken = {self.settings.api_port, self.settings.logstream_port}
        ports: dict[str, str] = {}
        next_port = base
        for child in self.children:
            if child.name in SINGLE:
                continue
            if base == 0:
                child.metrics_port = free_tcp_port(self.settings.metrics_host)
            else:
                # Skip what this installation uses and what something else already listens on.
                while next_port in taken or not os_port_free(self.settings.metrics_host, next_port):
                    next_port += 1
                child.metrics_port = next_port
                next_port += 1
            ports[child.label] = f"http://{self.settings.metrics_host}:{child.metrics_port}"
        api = f"http://{self.settings.api_host}:{self.settings.api_port}"
        ports["api"] = api
        ports["logstream"] = f"http://{self.settings.logstream_host}:{self.settings.logstream_port}"
        (self.settings.home / "metrics-ports.json").write_text(json.dumps(ports, indent=2) + "\n")

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._request_stop())
        signal.signal(signal.SIGINT, lambda *_: self._request_stop())
        try:
            env = {**os.environ, **self.start_servers()}
            for name, module in SERVICES.items():
                for replica in range(self.replicas.get(name, 1)):
                    self.children.append(Child(name, replica if self.replicas.get(name, 1) > 1 else 0, module))
            self.assign_metrics_ports()
            for child in self.children:
                self.spawn(child, env)
            self._announce()
            return self._watch(env)
        finally:
            self.shutdown()

    def _request_stop(self) -> None:
        self.stopping = True

    def _announce(self) -> None:
        url = f"http://{self.settings.api_host}:{self.settings.api_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stopping:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    counts = ", ".join(f"{n}x{self.replicas.get(n, 1)}" for n in SERVICES)
                    self.say(f"up: API {url} (docs {url}/docs), services {counts}. Ctrl-C stops everything.")
                    self.say(f"metrics: /metrics, /healthz, /readyz of every service are listed in "
                             f"{self.settings.home / 'metrics-ports.json'}")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        if not self.stopping:
            self.say(f"[yellow]the API did not answer at {url} within 60 s; see the messages above[/]")

    def _watch(self, env: dict[str, str]) -> int:
        while not self.stopping:
            time.sleep(0.5)
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is None or self.stopping:
                    continue
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < 60] + [now]
                if len(child.restarts) > MAX_RESTARTS_PER_MINUTE:
                    self.say(
                        f"[red]{child.label} exited with code {code} {len(child.restarts)} times in a minute; "
                        "giving up and stopping Portside[/]"
                    )
                    return 1
                self.say(f"[yellow]{child.label} (pid {child.process.pid}) exited with code {code}; restarting it[/]")
                self.spawn(child, env)
        return 0

    def shutdown(self) -> None:
        live = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.children:
            self.say("services stopped")
        if self.caddy:
            self.caddy.stop()
            self.caddy = None
        if self.nats:
            self.nats.stop()
            self.nats = None
        if self.postgres:
            self.postgres.stop()
            self.postgres = None

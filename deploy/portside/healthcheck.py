"""Health checks of Portside's containers (`portside-entrypoint health <what>`): exit 0 when healthy.

  api | logstream   the service answers its own health endpoint
  proxy             the front answers the API's health endpoint through some API replica
  nats              nats-server is up with JetStream enabled (its monitoring endpoint)
  postgres          PostgreSQL accepts connections
  worker            the process holds an established connection to NATS (detector, builder, runner have no
                    HTTP port; a worker that lost the broker does no work, and Docker should say so). The
                    entrypoint does this one in awk, without starting Python; this is the same check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


def nats_port() -> int:
    url = os.environ.get("PORTSIDE_NATS_URL") or f"nats://{os.environ.get('NATS_ADDRESS', 'nats:4222')}"
    return urlsplit(url).port or 4222


def connected_to(port: int) -> bool:
    """An ESTABLISHED TCP connection to `port` in this container's network namespace."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def main(what: str) -> bool:
    if what == "api":
        return http_ok(f"http://127.0.0.1:{os.environ.get('PORTSIDE_API_PORT', '8080')}/api/health")
    if what == "logstream":
        return http_ok(f"http://127.0.0.1:{os.environ.get('PORTSIDE_LOGSTREAM_PORT', '8081')}/healthz")
    if what == "proxy":
        return http_ok("http://127.0.0.1:8080/api/health")
    if what == "nats":
        return http_ok("http://127.0.0.1:8222/healthz?js-enabled-only=true")
    if what == "postgres":
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-U", "portside", "-d", "portside"],
                              check=False).returncode == 0
    if what == "worker":
        return connected_to(nats_port())
    print(f"unknown health check `{what}`; use api, logstream, proxy, nats, postgres or worker", file=sys.stderr)
    return False


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1] if len(sys.argv) > 1 else "") else 1)

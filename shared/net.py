"""Small TCP helpers: is a port free on this machine, find a free one, wait for one to accept."""

from __future__ import annotations

import socket
import time


def os_port_free(bind_address: str, port: int) -> bool:
    """True when nothing on this machine listens on `port` at `bind_address` (the address Docker publishes on)."""
    family = socket.AF_INET6 if ":" in bind_address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Like Docker (and any server): connections in TIME_WAIT from a stopped app do not make the port busy;
        # on Linux SO_REUSEADDR still refuses a port that something listens on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_address, port))
        except OSError:
            return False
    return True


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_tcp(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False

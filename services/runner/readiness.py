"""Is the app up? An HTTP request to the published port must get any HTTP response: a TCP connect alone
proves nothing, because Docker's proxy accepts connections before the app listens."""

from __future__ import annotations

import socket


def http_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: portside-readiness\r\n\r\n".encode())
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False

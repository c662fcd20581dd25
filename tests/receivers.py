"""Webhook receivers on loopback for tests: each records what it was sent and answers as told."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


@dataclass
class Receiver:
    """An HTTP server on loopback that records each POST (time, headers, body) and answers `status`;
    while `hold` is clear it keeps the request waiting (a receiver that hangs)."""

    status: int = 200
    hold: threading.Event = field(default_factory=threading.Event)
    seen: list[tuple[float, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    answered: int = 0
    # How long a held request waits at most before it is answered anyway.
    hold_seconds: float = 30
    webhook_id: int | None = None
    # Sent as the Location header (a receiver that redirects).
    location: str | None = None

    def __post_init__(self) -> None:
        self.hold.set()


class Receivers:
    def __init__(self) -> None:
        self.servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def new(self, host: str = "127.0.0.1", port: int = 0, **kwargs: object) -> Receiver:
        receiver = Receiver(**kwargs)  # type: ignore[arg-type]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.seen.append((time.monotonic(), dict(self.headers), body))
                receiver.hold.wait(receiver.hold_seconds)
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()
                receiver.answered += 1

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        receiver.url = f"http://{host}:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append((server, receiver))
        return receiver

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for server, receiver in self.servers:
            receiver.hold.set()
            server.shutdown()
            server.server_close()

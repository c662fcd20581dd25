"""Request checks before any route: the Host header must name this server (DNS rebinding), and a
state-changing request from a browser must come from this server's own origin or a configured one."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import Settings
from shared.errors import ErrorCode

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _hostname(host: str) -> str:
    """`example.com:8080` -> `example.com`; `[::1]:8080` -> `::1`."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.any_host = "*" in settings.allowed_hosts
        self.hosts = {h.lower() for h in settings.allowed_hosts} | {settings.api_host.lower()}
        self.origins = {o.rstrip("/").lower() for o in settings.cors_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.any_host and _hostname(host).lower() not in self.hosts:
            await self._refuse(scope, send, 400, ErrorCode.HOST_NOT_ALLOWED,
                               f"This server does not answer for host `{host}`; add it to PORTSIDE_ALLOWED_HOSTS.")
            return
        origin = headers.get("origin")
        state_changing = scope["type"] == "websocket" or scope.get("method", "GET") not in _SAFE_METHODS
        if origin and state_changing and not self._origin_allowed(origin, host):
            await self._refuse(scope, send, 403, ErrorCode.FORBIDDEN,
                               f"Requests from {origin} are not allowed; add it to PORTSIDE_CORS_ORIGINS.")
            return
        await self.app(scope, receive, send)

    def _origin_allowed(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        return origin in self.origins or urlsplit(origin).netloc == host.lower()

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": code})
            return
        body = json.dumps({"detail": detail, "error_code": code}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

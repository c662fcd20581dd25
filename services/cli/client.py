"""A small client for Portside's REST API that turns error bodies into readable exits. httpx loads when the
first `Api` is made, so a command that never calls the API (`portside detect`) doesn't pay for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def default_api_url() -> str:
    if url := os.environ.get("PORTSIDE_API_URL"):
        return url
    host = os.environ.get("PORTSIDE_API_HOST", "127.0.0.1")
    return f"http://{host}:{os.environ.get('PORTSIDE_API_PORT', '8080')}"


class Api:
    def __init__(self, base_url: str, timeout: float = 60) -> None:
        import httpx

        self.client = httpx.Client(base_url=base_url, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(
                0, "API_UNAVAILABLE", f"Nothing answers at {self.client.base_url}; start Portside with `portside up`."
            ) from exc
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        if resp.status_code >= 400:
            raise ApiError(
                resp.status_code, body.get("error_code", f"HTTP_{resp.status_code}"), body.get("detail", resp.text)
            )
        return body.get("data", body)

    def sse(self, path: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, str]]:
        """(event, id, data) for each Server-Sent Event."""
        import httpx

        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with self.client.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=None)) as resp:
            if resp.status_code >= 400:
                resp.read()
                body = resp.json()
                raise ApiError(resp.status_code, body.get("error_code", ""), body.get("detail", ""))
            event, event_id = "message", ""
            data: list[str] = []
            for line in resp.iter_lines():
                if line == "":
                    if data:
                        yield event, event_id, "\n".join(data)
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if field == "event":
                        event = value
                    elif field == "id":
                        event_id = value
                    elif field == "data":
                        data.append(value)

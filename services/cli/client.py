"""A small client for Portside's REST API that turns error bodies into readable exits, and the saved login
(`portside login`): PORTSIDE_API_URL and PORTSIDE_TOKEN in the environment come first (CI), then the file."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def credentials_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "portside" / "credentials.json"


def saved_login() -> dict[str, str]:
    try:
        data = json.loads(credentials_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_login(api_url: str, token: str) -> Path:
    """Write the token to a file only the user can read (created 0600, never widened)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"api_url": api_url, "token": token}, out)
    tmp.replace(path)
    return path


def default_token() -> str | None:
    return os.environ.get("PORTSIDE_TOKEN") or saved_login().get("token")


def login(api_url: str, email: str, password: str) -> Path:
    """Log in, create a personal API token for this machine and save it; returns the file it went to."""
    api = Api(api_url, token="")
    pair = api.call("POST", "/api/auth/login", json={"email": email, "password": password})
    api.client.headers["Authorization"] = f"Bearer {pair['access_token']}"
    created = api.call("POST", "/api/tokens", json={"name": f"cli@{socket.gethostname()}"})
    return save_login(api_url, created["token"])


def default_api_url() -> str:
    if url := os.environ.get("PORTSIDE_API_URL"):
        return url
    if url := saved_login().get("api_url"):
        return url
    host = os.environ.get("PORTSIDE_API_HOST", "127.0.0.1")
    return f"http://{host}:{os.environ.get('PORTSIDE_API_PORT', '8080')}"


class Api:
    def __init__(self, base_url: str, timeout: float = 60, token: str | None = None) -> None:
        token = default_token() if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=base_url, timeout=timeout, headers=headers)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(0, "API_UNAVAILABLE", f"Nothing answers at {self.client.base_url}; start Portside with `portside up`.") from exc
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        if resp.status_code >= 400:
            code = body.get("error_code", f"HTTP_{resp.status_code}")
            detail = body.get("detail", resp.text)
            if resp.status_code == 401:
                detail += " Run `portside login` (or set PORTSIDE_TOKEN)."
            raise ApiError(resp.status_code, code, detail)
        return body.get("data", body)

    def sse(self, path: str, last_event_id: str | None = None) -> Iterator[tuple[str, str, str]]:
        """(event, id, data) for each Server-Sent Event."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with self.client.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=None)) as resp:
            if resp.status_code >= 400:
                resp.read()
                body = resp.json()
                raise ApiError(resp.status_code, body.get("error_code", ""), body.get("detail", ""))
            event, event_id, data = "message", "", []
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

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from services.api.main import create_app
from shared.config import Settings


def _client(tmp_path: Path, **overrides: object) -> TestClient:
    # No lifespan (no `with`): nothing connects; every request below is answered before a database is needed.
    settings = Settings(
        home=tmp_path,
        database_url="postgresql://unit@localhost/unit",
        nats_url="nats://127.0.0.1:1",
        allowed_hosts=["testserver"],
        **overrides,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_unknown_host_header_is_refused(tmp_path: Path) -> None:
    resp = _client(tmp_path).get("/api/health", headers={"Host": "rebound.example"})
    assert resp.status_code == 400 and resp.json()["error_code"] == "HOST_NOT_ALLOWED"


def test_cross_site_state_change_is_refused_but_a_read_is_not(tmp_path: Path) -> None:
    client = _client(tmp_path)
    post = client.post("/api/auth/logout", json={"refresh_token": "x"}, headers={"Origin": "https://evil.example"})
    assert post.status_code == 403 and post.json()["error_code"] == "FORBIDDEN"
    assert client.get("/api/health", headers={"Origin": "https://evil.example"}).status_code == 200


def test_cors_answers_only_configured_origins(tmp_path: Path) -> None:
    client = _client(tmp_path, cors_origins=["https://ui.example"])
    preflight = {"Access-Control-Request-Method": "POST"}
    ok = client.options("/api/tokens", headers={"Origin": "https://ui.example", **preflight})
    assert ok.headers.get("access-control-allow-origin") == "https://ui.example"
    other = client.options("/api/tokens", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    closed = _client(tmp_path).options("/api/tokens", headers={"Origin": "https://ui.example", **preflight})
    assert "access-control-allow-origin" not in closed.headers


def test_routes_without_a_token_answer_unauthorized(tmp_path: Path) -> None:
    resp = _client(tmp_path).get("/api/deployments")
    assert resp.status_code == 401 and resp.json()["error_code"] == "UNAUTHORIZED"
    assert resp.headers["www-authenticate"] == "Bearer"

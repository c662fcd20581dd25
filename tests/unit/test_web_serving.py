"""The API serves the built web page at `/` with an SPA fallback that never shadows the API's own paths."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.errors import install_error_handlers
from services.api.web import install_web


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (dist / "assets" / "big-abc.js").write_text("let big = 1;")
    (dist / "assets" / "big-abc.js.gz").write_bytes(gzip.compress(b"let big = 1;"))
    (tmp_path / "secret.txt").write_text("outside dist")
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/api/things")
    async def things() -> dict:
        return {"success": True, "data": []}

    install_web(app, dist)
    return TestClient(app)


def test_page_paths_answer_the_index(client: TestClient) -> None:
    for path in ("/", "/repositories", "/deployments/12", "/users"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert '<div id=root>' in resp.text
        assert resp.headers["cache-control"] == "no-cache"


def test_assets_are_served_with_a_long_cache(client: TestClient) -> None:
    resp = client.get("/assets/index-abc.js")
    assert resp.text == "console.log(1)"
    assert "immutable" in resp.headers["cache-control"]
    assert client.get("/favicon.svg").text == "<svg/>"


def test_gzip_copies_go_to_browsers_that_accept_them(client: TestClient) -> None:
    resp = client.get("/assets/big-abc.js", headers={"Accept-Encoding": "gzip"})
    assert resp.headers["content-encoding"] == "gzip"
    assert resp.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert resp.text == "let big = 1;"  # httpx decodes it, as a browser does
    plain = client.get("/assets/big-abc.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == "let big = 1;"


def test_api_paths_keep_their_own_answers(client: TestClient) -> None:
    assert client.get("/api/things").json() == {"success": True, "data": []}
    for path in ("/api/nope", "/api", "/docs/nope", "/openapi.json/x"):
        resp = client.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["error_code"] == "NOT_FOUND"
    assert client.post("/api/nope").status_code == 404
    assert client.get("/openapi.json").json()["openapi"]
    assert client.get("/docs").status_code == 200


def test_no_file_outside_dist(client: TestClient) -> None:
    resp = client.get("/assets/../../secret.txt")
    assert "outside dist" not in resp.text
    resp = client.get("/%2e%2e/secret.txt")
    assert "outside dist" not in resp.text


def test_unbuilt_page_says_how_to_build(tmp_path: Path) -> None:
    app = FastAPI()
    install_web(app, tmp_path / "missing")
    resp = TestClient(app).get("/")
    assert resp.status_code == 503
    assert "make install" in resp.text

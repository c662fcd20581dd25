"""Users, tokens and ownership against a whole running Portside. The ownership matrix is generated from the
API's route table: a route without a rule in RULES fails, so a new route cannot ship unguarded."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from services.api.main import create_app
from shared.config import Settings
from tests.conftest import copy_fixture
from tests.support import ADMIN_PASSWORD, System

IDENTITIES = ("anonymous", "viewer", "other", "owner", "admin")
ALLOWED, UNAUTHORIZED, FORBIDDEN, NOT_FOUND = "allowed", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND"
UNSIGNED = "WEBHOOK_SIGNATURE_INVALID"

# What each identity gets, by kind of route. "other" is a member who does not own the object.
EXPECT: dict[str, dict[str, str]] = {
    "public": dict.fromkeys(IDENTITIES, ALLOWED),
    "user": {"anonymous": UNAUTHORIZED, "viewer": ALLOWED, "other": ALLOWED, "owner": ALLOWED, "admin": ALLOWED},
    "admin": {"anonymous": UNAUTHORIZED, "viewer": FORBIDDEN, "other": FORBIDDEN, "owner": FORBIDDEN, "admin": ALLOWED},
    "create": {"anonymous": UNAUTHORIZED, "viewer": FORBIDDEN, "other": ALLOWED, "owner": ALLOWED, "admin": ALLOWED},
    "read": {"anonymous": UNAUTHORIZED, "viewer": ALLOWED, "other": NOT_FOUND, "owner": ALLOWED, "admin": ALLOWED},
    "write": {"anonymous": UNAUTHORIZED, "viewer": FORBIDDEN, "other": NOT_FOUND, "owner": ALLOWED, "admin": ALLOWED},
    # A git host's webhook: no login; a bearer token of any identity does not stand in for the signature.
    "signed": dict.fromkeys(IDENTITIES, UNSIGNED),
}

RULES: dict[tuple[str, str], str] = {
    ("GET", "/api/health"): "public",
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    # Prometheus text: PORTSIDE_METRICS_TOKEN or an admin (tests/e2e/test_metrics.py checks the token).
    ("GET", "/metrics"): "admin",
    ("POST", "/api/auth/register"): "public",
    ("POST", "/api/auth/login"): "public",
    ("POST", "/api/auth/refresh"): "public",
    ("POST", "/api/auth/logout"): "public",
    ("GET", "/api/auth/me"): "user",
    ("POST", "/api/users"): "admin",
    ("GET", "/api/users"): "admin",
    ("PATCH", "/api/users/{user_id}"): "admin",
    ("GET", "/api/audit"): "admin",
    ("POST", "/api/tokens"): "user",
    ("GET", "/api/tokens"): "user",
    ("DELETE", "/api/tokens/{token_id}"): "user",
    ("POST", "/api/repositories"): "create",
    ("GET", "/api/repositories"): "user",
    ("GET", "/api/repositories/{repo_id}"): "read",
    ("POST", "/api/repositories/{repo_id}/pull"): "write",
    ("DELETE", "/api/repositories/{repo_id}"): "write",
    ("PATCH", "/api/repositories/{repo_id}"): "write",
    # The hook secret is for those who may change the repository, so reading it is a write-level right.
    ("GET", "/api/repositories/{repo_id}/hook"): "write",
    ("POST", "/api/repositories/{repo_id}/hook"): "write",
    ("POST", "/api/hooks/git/{repo_id}"): "signed",
    ("GET", "/api/deployments"): "user",
    ("POST", "/api/deployments/detect/{repo_id}"): "write",
    ("POST", "/api/deployments/generate/{repo_id}"): "write",
    ("GET", "/api/deployments/{deployment_id}"): "read",
    ("PUT", "/api/deployments/{deployment_id}/files"): "write",
    ("POST", "/api/deployments/{deployment_id}/deploy"): "write",
    ("POST", "/api/deployments/{deployment_id}/stop"): "write",
    ("POST", "/api/deployments/{deployment_id}/cancel"): "write",
    ("POST", "/api/deployments/{deployment_id}/rollback"): "write",
    ("DELETE", "/api/deployments/{deployment_id}"): "write",
    ("GET", "/api/deployments/{deployment_id}/status"): "read",
    ("GET", "/api/deployments/{deployment_id}/events"): "read",
    ("GET", "/api/deployments/{deployment_id}/metrics"): "read",
    ("GET", "/api/deployments/{deployment_id}/logs"): "read",
    ("GET", "/api/deployments/{deployment_id}/logs/stream"): "read",
    ("WEBSOCKET", "/api/deployments/{deployment_id}/logs/stream"): "read",
    ("GET", "/api/deployments/{deployment_id}/env"): "read",
    ("PUT", "/api/deployments/{deployment_id}/env"): "write",
    ("GET", "/api/deployments/{deployment_id}/domains"): "read",
    ("PUT", "/api/deployments/{deployment_id}/domains"): "write",
    ("GET", "/api/deployments/{deployment_id}/releases"): "read",
    # Webhooks are each user's own (another user's id answers WEBHOOK_NOT_FOUND); what a webhook and the event
    # stream carry is filtered by what its user may see (shared/access.py).
    ("POST", "/api/webhooks"): "user",
    ("GET", "/api/webhooks"): "user",
    ("DELETE", "/api/webhooks/{webhook_id}"): "user",
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): "user",
    ("POST", "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): "user",
    ("GET", "/api/events"): "user",
    ("GET", "/api/asyncapi.json"): "public",
}
# Routes FastAPI adds for its own documents, and the web page's static files (services/api/web.py: public,
# never under /api, so no data behind it).
DOC_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/{path:page}"}

_refresh_accounts = itertools.cycle(["matrix-a@portside.test", "matrix-b@portside.test"])


def _fresh_refresh_token(system: System) -> dict:
    # Two accounts take turns, so the per-account login limit (10 a minute) is not what the matrix measures.
    resp = httpx.post(
        f"{system.url}/api/auth/login", json={"email": next(_refresh_accounts), "password": ADMIN_PASSWORD}
    )
    return {"refresh_token": resp.json()["refresh_token"]}


# A body per route (a callable makes a new one per request, e.g. a refresh token is spent once).
BODIES: dict[tuple[str, str], dict | Callable[[System], dict]] = {
    ("POST", "/api/auth/register"): {"email": "late@portside.test", "password": "long enough password"},
    ("POST", "/api/auth/login"): {"email": "matrix@portside.test", "password": ADMIN_PASSWORD},
    ("POST", "/api/auth/refresh"): _fresh_refresh_token,
    ("POST", "/api/auth/logout"): _fresh_refresh_token,
    ("POST", "/api/users"): {"email": "made@portside.test", "password": "long enough password", "role": "viewer"},
    ("PATCH", "/api/users/{user_id}"): {},
    ("POST", "/api/tokens"): {"name": "matrix"},
    ("POST", "/api/repositories"): {"url": "/no/such/repository.git"},
    ("PATCH", "/api/repositories/{repo_id}"): {"preview_secrets": False},
    ("POST", "/api/deployments/detect/{repo_id}"): {"app_path": ""},
    ("POST", "/api/deployments/generate/{repo_id}"): {"app_path": ""},
    ("PUT", "/api/deployments/{deployment_id}/files"): {"dockerfile": 'FROM python:3.12-slim\nCMD ["python", "-V"]\n'},
    ("PUT", "/api/deployments/{deployment_id}/env"): {"variables": [{"key": "GREETING", "value": "hi"}]},
    ("PUT", "/api/deployments/{deployment_id}/domains"): {"domains": []},
    ("POST", "/api/webhooks"): {"url": "https://hooks.portside.invalid/x", "events": ["*"], "secret": "s" * 16},
}


def _walk(routes: list, prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found += [(method, prefix + route.path) for method in sorted(route.methods - {"HEAD"})]
        elif isinstance(route, APIWebSocketRoute):
            found.append(("WEBSOCKET", prefix + route.path))
        elif hasattr(route, "original_router"):  # newer FastAPI keeps included routers as one entry each
            found += _walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif getattr(route, "path", None) not in DOC_ROUTES:
            found.append(("?", getattr(route, "path", repr(route))))
    return found


def route_table() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="postgresql://docs@localhost/docs", nats_url="nats://127.0.0.1:1"))
    return _walk(app.routes)


def test_every_route_has_an_ownership_rule() -> None:
    missing = [route for route in route_table() if route not in RULES]
    assert not missing, f"routes without an ownership rule in tests/e2e/test_auth.py RULES: {missing}"
    stale = set(RULES) - set(route_table())
    assert not stale, f"rules for routes that no longer exist: {stale}"


@pytest.fixture(scope="module")
def people(system: System) -> dict[str, str | None]:
    """A personal API token per identity (None for anonymous); the owner and `other` are members."""
    return {
        "anonymous": None,
        "viewer": system.add_user("viewer@portside.test", "viewer"),
        "other": system.add_user("other@portside.test", "member"),
        "owner": system.add_user("owner@portside.test", "member"),
        "admin": system.token,
    }


def _client(system: System, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=system.url, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def owned(
    system: System, people: dict[str, str | None], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], dict]:
    """Makes a repository and a generated deployment owned by `owner` (the admin registers the directory, since
    members may not, and hands it to the owner)."""
    source = copy_fixture("python-flask", tmp_path_factory.mktemp("owned"), git=True)
    owner = _client(system, people["owner"])

    def make() -> dict:
        repo = system.call("POST", "/api/repositories", json={"url": f"file://{source}", "branch": "main"})
        repo_id = repo["data"]["id"]
        system.give_repository(repo_id, "owner@portside.test")
        generated = owner.post(f"/api/deployments/generate/{repo_id}", json={})
        assert generated.status_code == 200, generated.text
        return {"repo_id": repo_id, "deployment_id": generated.json()["data"]["deployment_id"]}

    return make


def _outcome(resp: httpx.Response) -> str:
    code = (
        resp.json().get("error_code") if resp.headers.get("content-type", "").startswith("application/json") else None
    )
    if code in ("UNAUTHORIZED", "TOKEN_EXPIRED"):
        return UNAUTHORIZED
    if code == "FORBIDDEN":
        return FORBIDDEN
    if code in ("REPOSITORY_NOT_FOUND", "DEPLOYMENT_NOT_FOUND"):
        return NOT_FOUND
    if code == UNSIGNED:
        return UNSIGNED
    return ALLOWED


def _ws_outcome(system: System, path: str, token: str | None) -> str:
    """Connect, and read the close code if the server closes at once (4401 / 4404), else the route let us in."""
    url = system.url.replace("http://", "ws://") + path
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with ws_connect(url, additional_headers=headers, open_timeout=30) as ws:
        try:
            ws.recv(timeout=3)
        except TimeoutError:
            return ALLOWED
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            return {4401: UNAUTHORIZED, 4404: NOT_FOUND}.get(code, ALLOWED)
    return ALLOWED


def test_ownership_matrix(system: System, people: dict[str, str | None], owned: Callable[[], dict]) -> None:
    shared = owned()
    for email in ("matrix@portside.test", "matrix-a@portside.test", "matrix-b@portside.test"):
        system.add_user(email, "viewer")
    viewer_id = _client(system, people["viewer"]).get("/api/auth/me").json()["data"]["id"]
    checked, wrong = 0, []
    for method, path in route_table():
        kind = RULES[(method, path)]
        for identity in IDENTITIES:
            if method == "WEBSOCKET":
                got = _ws_outcome(system, path.format(deployment_id=shared["deployment_id"]), people[identity])
                checked += 1
                if got != EXPECT[kind][identity]:
                    wrong.append(f"{method} {path} as {identity}: expected {EXPECT[kind][identity]}, got {got}")
                continue
            deletes = method == "DELETE" and ("{deployment_id}" in path or "{repo_id}" in path)
            target = owned() if deletes else shared
            url = path.format(
                repo_id=target["repo_id"], deployment_id=target["deployment_id"], user_id=viewer_id, token_id=999999,
                webhook_id=999999, delivery_id=999999,
            )
            with _client(system, people[identity]) as client:
                body = BODIES.get((method, path))
                request = client.build_request(method, url, json=body(system) if callable(body) else body)
                resp = client.send(request, stream=True)  # the log stream never ends: read the head only
                try:
                    if not resp.headers.get("content-type", "").startswith("text/event-stream"):
                        resp.read()
                    got = _outcome(resp) if resp.is_stream_consumed else ALLOWED
                    assert resp.status_code < 500 or resp.status_code in (503, 504), (
                        f"{method} {url} as {identity}: {resp.status_code}"
                    )
                finally:
                    resp.close()
            checked += 1
            if got != EXPECT[kind][identity]:
                wrong.append(
                    f"{method} {path} as {identity}: expected {EXPECT[kind][identity]}, got {got} ({resp.status_code})"
                )
    assert not wrong, "\n".join(wrong)
    print(f"ownership matrix: {checked} checks ({checked // len(IDENTITIES)} routes x {len(IDENTITIES)} identities)")


def test_lists_show_a_member_only_their_own(
    system: System, people: dict[str, str | None], owned: Callable[[], dict]
) -> None:
    mine = owned()
    other = _client(system, people["other"])
    assert mine["deployment_id"] not in [d["id"] for d in other.get("/api/deployments").json()["data"]]
    assert mine["repo_id"] not in [r["id"] for r in other.get("/api/repositories").json()["data"]]
    owner_list = _client(system, people["owner"]).get("/api/deployments").json()["data"]
    assert mine["deployment_id"] in [d["id"] for d in owner_list]
    everything = _client(system, people["admin"]).get("/api/deployments").json()["data"]
    assert mine["deployment_id"] in [d["id"] for d in everything]


def test_a_member_pulls_and_deletes_their_repository_over_http(
    system: System, people: dict[str, str | None], tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    repo = system.call("POST", "/api/repositories", json={"url": f"file://{source}", "branch": "main"})["data"]
    system.give_repository(repo["id"], "owner@portside.test")
    clone = Path(repo["path"])
    (source / "NEWS.md").write_text("pulled over http\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@portside.invalid"]
    subprocess.run([*git, "add", "-A"], cwd=source, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "news"], cwd=source, check=True)
    owner, viewer, other = (_client(system, people[who]) for who in ("owner", "viewer", "other"))

    assert viewer.post(f"/api/repositories/{repo['id']}/pull").json()["error_code"] == "FORBIDDEN"
    assert other.post(f"/api/repositories/{repo['id']}/pull").json()["error_code"] == "REPOSITORY_NOT_FOUND"
    pulled = owner.post(f"/api/repositories/{repo['id']}/pull")
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["data"]["id"] == repo["id"]
    assert (clone / "NEWS.md").read_text() == "pulled over http\n"

    generated = owner.post(f"/api/deployments/generate/{repo['id']}", json={})
    assert generated.status_code == 200, generated.text
    deployment_id = generated.json()["data"]["deployment_id"]
    assert viewer.delete(f"/api/repositories/{repo['id']}").status_code == 403
    assert other.delete(f"/api/repositories/{repo['id']}").status_code == 404
    deleted = owner.delete(f"/api/repositories/{repo['id']}")
    assert deleted.status_code == 200 and deleted.json()["data"] == {"deleted": True}
    assert not clone.exists() and source.is_dir()
    assert owner.get(f"/api/deployments/{deployment_id}").json()["error_code"] == "DEPLOYMENT_NOT_FOUND"
    gone = owner.get(f"/api/repositories/{repo['id']}")
    assert gone.status_code == 404 and set(gone.json()) >= {"detail", "error_code"}


def test_a_member_may_not_register_a_server_directory(
    system: System, people: dict[str, str | None], tmp_path: Path
) -> None:
    member = _client(system, people["owner"])
    for body in ({"path": str(tmp_path)}, {"url": f"file://{tmp_path}"}):
        resp = member.post("/api/repositories", json=body)
        assert resp.status_code == 403 and resp.json()["error_code"] == "FORBIDDEN"


def test_signup_is_closed_after_the_first_user(system: System) -> None:
    resp = httpx.post(f"{system.url}/api/auth/register", json={"email": "x@portside.test", "password": ADMIN_PASSWORD})
    assert resp.status_code == 403 and resp.json()["error_code"] == "SIGNUP_CLOSED"
    me = system.call("GET", "/api/auth/me")["data"]
    assert me["role"] == "admin"


def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(
    system: System, people: dict[str, str | None]
) -> None:
    login = httpx.post(
        f"{system.url}/api/auth/login", json={"email": "viewer@portside.test", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200
    pair = login.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type"} and pair["token_type"] == "bearer"
    first = httpx.post(f"{system.url}/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert first.status_code == 200 and first.json()["refresh_token"] != pair["refresh_token"]
    replay = httpx.post(f"{system.url}/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401 and replay.json()["error_code"] == "UNAUTHORIZED"
    # The replay revoked the whole family, the token handed out by the first refresh included.
    after = httpx.post(f"{system.url}/api/auth/refresh", json={"refresh_token": first.json()["refresh_token"]})
    assert after.status_code == 401


def test_garbage_and_revoked_tokens_are_refused(system: System, people: dict[str, str | None]) -> None:
    bad = httpx.get(f"{system.url}/api/deployments", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401 and bad.json()["error_code"] == "UNAUTHORIZED"
    access = system.login("other@portside.test", ADMIN_PASSWORD)
    created = httpx.post(
        f"{system.url}/api/tokens", json={"name": "short-lived"}, headers={"Authorization": f"Bearer {access}"}
    ).json()["data"]
    token_headers = {"Authorization": f"Bearer {created['token']}"}
    assert httpx.get(f"{system.url}/api/auth/me", headers=token_headers).status_code == 200
    listed = httpx.get(f"{system.url}/api/tokens", headers=token_headers).json()["data"]
    row = next(t for t in listed if t["id"] == created["id"])
    assert row["last_used_at"] is not None and "token" not in row
    revoked = httpx.delete(f"{system.url}/api/tokens/{created['id']}", headers=token_headers)
    assert revoked.status_code == 200
    assert httpx.get(f"{system.url}/api/auth/me", headers=token_headers).status_code == 401


def test_a_disabled_user_is_locked_out(system: System) -> None:
    token = system.add_user("leaver@portside.test", "member")
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{system.url}/api/auth/me", headers=headers).status_code == 200
    user_id = httpx.get(f"{system.url}/api/auth/me", headers=headers).json()["data"]["id"]
    system.call("PATCH", f"/api/users/{user_id}", json={"disabled": True})
    assert httpx.get(f"{system.url}/api/auth/me", headers=headers).status_code == 401


def test_host_header_and_cross_site_posts_are_refused(system: System) -> None:
    rebound = httpx.get(f"{system.url}/api/health", headers={"Host": "evil.example"})
    assert rebound.status_code == 400 and rebound.json()["error_code"] == "HOST_NOT_ALLOWED"
    cross = system.client.post("/api/tokens", json={"name": "x"}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and cross.json()["error_code"] == "FORBIDDEN"
    same = system.client.post("/api/tokens", json={"name": "x"}, headers={"Origin": system.url})
    assert same.status_code == 201


def test_audit_trail_records_logins_and_token_creation(system: System, people: dict[str, str | None]) -> None:
    events = system.call("GET", "/api/audit", params={"limit": 1000})["data"]
    actions = {e["action"] for e in events}
    assert {"register", "login", "token_created", "user_created"} <= actions


def test_login_attempts_per_account_are_limited_with_retry_after(system: System) -> None:
    answers = [
        httpx.post(f"{system.url}/api/auth/login", json={"email": "target@portside.test", "password": "guess"})
        for _ in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert answers[10].status_code == 429 and answers[10].json()["error_code"] == "RATE_LIMITED"
    assert int(answers[10].headers["Retry-After"]) >= 1


def test_env_secrets_are_masked_and_kept(
    system: System, people: dict[str, str | None], owned: Callable[[], dict]
) -> None:
    target = owned()
    owner = _client(system, people["owner"])
    url = f"/api/deployments/{target['deployment_id']}/env"
    put = owner.put(
        url,
        json={
            "variables": [
                {"key": "API_KEY", "value": "s3cret-value-123", "secret": True},
                {"key": "GREETING", "value": "hello"},
            ]
        },
    )
    assert put.status_code == 200, put.text
    assert "s3cret-value-123" not in put.text
    got = owner.get(url).json()["data"]["variables"]
    assert got == [
        {"key": "API_KEY", "value": "********", "secret": True, "build": False},
        {"key": "GREETING", "value": "hello", "secret": False, "build": False},
    ]
    # Sending the mask back keeps the stored secret; a new variable without a value is refused.
    kept = owner.put(url, json={"variables": [{"key": "API_KEY", "value": "********", "secret": True}]})
    assert kept.status_code == 200
    missing = owner.put(url, json={"variables": [{"key": "NEW_ONE", "secret": True}]})
    assert missing.status_code == 422 and missing.json()["error_code"] == "VALIDATION_ERROR"
    for path in (f"/api/deployments/{target['deployment_id']}", "/api/audit"):
        assert "s3cret-value-123" not in system.client.get(path).text


def test_websocket_log_stream_has_the_sse_lines_ids_and_resume(
    system: System, people: dict[str, str | None], owned: Callable[[], dict]
) -> None:
    target = owned()
    path = f"/api/deployments/{target['deployment_id']}/logs/stream"
    owner = people["owner"]
    client = _client(system, owner)
    # A build writes lines; a few are enough, then it is stopped.
    assert client.post(f"/api/deployments/{target['deployment_id']}/deploy").status_code == 202
    history: list[dict] = []
    deadline = time.monotonic() + 180
    while len(history) < 3 and time.monotonic() < deadline:
        time.sleep(1)
        history = client.get(f"/api/deployments/{target['deployment_id']}/logs").json()["data"]["entries"]
    client.post(f"/api/deployments/{target['deployment_id']}/stop", params={"wait": "true"})
    assert len(history) >= 3, history
    url = system.url.replace("http://", "ws://") + path
    with ws_connect(f"{url}?access_token={owner}", open_timeout=30) as ws:
        received: list[dict] = []
        while len(received) < len(history):
            message = json.loads(ws.recv(timeout=30))
            if message["event"] != "progress":  # build progress rides along without an id, as in SSE
                received.append(message)
    assert [(m["id"], m["data"]) for m in received] == [(str(e["seq"]), e["line"]) for e in history]
    with ws_connect(f"{url}?access_token={owner}&last_event_id={history[0]['seq']}", open_timeout=30) as ws:
        resumed = json.loads(ws.recv(timeout=30))
        while resumed["event"] == "progress":
            resumed = json.loads(ws.recv(timeout=30))
    assert resumed["id"] == str(history[1]["seq"])

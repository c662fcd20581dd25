"""Deploy on git push and preview deployments against a whole Portside and a local bare repository standing in for
the git host: deliveries signed as GitHub, GitLab and Gitea sign them, a push that deploys, a repeated and a late
delivery that do nothing, a pull request's preview that runs and is gone once the request closes."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import time
from pathlib import Path
from uuid import uuid4

import docker
import httpx
import pytest

from shared.net import os_port_free
from tests.conftest import copy_fixture
from tests.support import System

pytestmark = pytest.mark.slow  # four image builds, and a Portside of its own for the poller

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@portside.invalid", "-c", "init.defaultBranch=main"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _commit(work: Path, text: str) -> str:
    app = work / "app.py"
    app.write_text(re.sub(r"hello from [^\\\n\"]*", text, app.read_text(), count=1))
    _git(work, "commit", "-q", "-am", text)
    return _git(work, "rev-parse", "HEAD")


def _deliver(system: System, repo_id: int, secret: str, provider: str, event: str, payload: dict,
             delivery: str | None = None, wrong: bool = False) -> httpx.Response:
    """POST a delivery signed as `provider` signs it (with a wrong key when `wrong`)."""
    body = json.dumps(payload).encode()
    key = ("x" + secret) if wrong else secret
    digest = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    delivery = delivery or uuid4().hex
    headers = {"Content-Type": "application/json"}
    if provider == "github":
        headers |= {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": f"sha256={digest}"}
    elif provider == "gitea":
        headers |= {"X-Gitea-Event": event, "X-Gitea-Delivery": delivery, "X-Gitea-Signature": digest}
    else:
        name = {"push": "Push Hook", "pull_request": "Merge Request Hook"}[event]
        headers |= {"X-Gitlab-Event": name, "X-Gitlab-Event-UUID": delivery, "X-Gitlab-Token": key}
    # No Authorization header: the signature is the credential.
    return httpx.post(f"{system.url}/api/hooks/git/{repo_id}", content=body, headers=headers, timeout=30)


def _outcome(system: System, repo_id: int, delivery: str, timeout: float = 300) -> str:
    """What the delivery did, once the background work is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in system.call("GET", f"/api/repositories/{repo_id}/hook")["data"]["deliveries"]:
            if row["delivery_id"] == delivery and row["outcome"]:
                return row["outcome"]
        time.sleep(0.5)
    raise AssertionError(f"delivery {delivery} never finished")


def _serves(port: int, text: str, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(1)
    return False


def _push_events(system: System, deployment_id: int) -> int:
    return sum("git push: deploying" in (e["message"] or "") for e in system.events(deployment_id))


def test_git_push_deploys_the_newest_commit_once_and_previews_follow_pull_requests(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    work = copy_fixture("python-flask", tmp_path, git=True)
    first = _git(work, "rev-parse", "HEAD")
    bare = tmp_path / "host.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    _git(work, "remote", "add", "origin", str(bare))
    repo = system.call("POST", "/api/repositories", json={"url": f"file://{bare}", "branch": "main"})["data"]
    repo_id = repo["id"]
    deployment_id = system.call("POST", f"/api/deployments/generate/{repo_id}", json={})["data"]["deployment_id"]
    system.call("PUT", f"/api/deployments/{deployment_id}/env", json={"variables": [
        {"key": "GREETING", "value": "hi"}, {"key": "API_KEY", "value": "s3cret-value-123", "secret": True}]})
    started = system.deploy(deployment_id)
    assert started["status"] == "running", started
    port = started["port"]
    hook = system.call("GET", f"/api/repositories/{repo_id}/hook")["data"]
    secret = hook["secret"]
    assert hook["url"] == f"/api/hooks/git/{repo_id}" and len(secret) >= 32
    assert system.call("GET", f"/api/repositories/{repo_id}/hook")["data"]["secret"] == secret  # retrievable

    # A push: wrong signatures are refused by each provider's scheme, the right one deploys the new commit.
    second = _commit(work, "hello from push v2")
    _git(work, "push", "-q", "origin", "main")
    push = {"ref": "refs/heads/main", "after": second, "repository": {"default_branch": "main"},
            "project": {"default_branch": "main"}}
    for provider in ("github", "gitlab", "gitea"):
        refused = _deliver(system, repo_id, secret, provider, "push", push, wrong=True)
        assert refused.status_code == 401 and refused.json()["error_code"] == "WEBHOOK_SIGNATURE_INVALID", refused.text
    accepted = _deliver(system, repo_id, secret, "github", "push", push, delivery="push-2")
    assert accepted.status_code == 202 and accepted.json()["data"]["status"] == "accepted", accepted.text
    assert _outcome(system, repo_id, "push-2").startswith(f"deploying {second[:12]}")
    assert _serves(port, "hello from push v2"), system.events(deployment_id)[-5:]
    assert system.wait_status(deployment_id, {"running"}, timeout=120)["status"] == "running"
    assert system.call("GET", f"/api/repositories/{repo_id}")["data"]["deploy_sha"] == second
    pushes = _push_events(system, deployment_id)
    assert pushes == 1

    # The same delivery again does nothing; a late delivery for the older commit (another provider, another id)
    # and a second delivery for the deployed commit do nothing either.
    again = _deliver(system, repo_id, secret, "github", "push", push, delivery="push-2")
    assert again.status_code == 200 and again.json()["data"]["status"] == "duplicate"
    late = _deliver(system, repo_id, secret, "gitea", "push", {**push, "after": first}, delivery="push-1-late")
    assert late.status_code == 202
    assert _outcome(system, repo_id, "push-1-late").startswith("nothing to do")
    repeat = _deliver(system, repo_id, secret, "gitlab", "push", push, delivery="push-2-gitlab")
    assert repeat.status_code == 202
    assert _outcome(system, repo_id, "push-2-gitlab").startswith("nothing to do")
    other = _deliver(system, repo_id, secret, "github", "push", {**push, "ref": "refs/heads/other"}, delivery="o")
    assert other.status_code == 202 and _outcome(system, repo_id, "o").startswith("ignored")
    assert _push_events(system, deployment_id) == pushes
    assert "hello from push v2" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text

    # A pull request: its head (kept by the host under refs/pull/N/head) runs as its own deployment and port,
    # with the repository's variables but not its secrets.
    _git(work, "checkout", "-q", "-b", "feature")
    head = _commit(work, "hello from preview")
    _git(work, "push", "-q", "origin", "feature:refs/pull/1/head")
    pull = {"action": "opened", "number": 1, "pull_request": {
        "number": 1, "head": {"sha": head, "ref": "feature"}, "base": {"ref": "main"}}}
    opened = _deliver(system, repo_id, secret, "github", "pull_request", pull, delivery="pr-1-opened")
    assert opened.status_code == 202, opened.text
    assert "created" in _outcome(system, repo_id, "pr-1-opened")
    preview = next(r for r in system.call("GET", "/api/repositories")["data"] if r["preview_of"] == repo_id)
    assert preview["preview_number"] == 1 and preview["deploy_sha"] == head
    preview_deployment = system.call("GET", "/api/deployments", params={"repo_id": preview["id"]})["data"][0]
    running = system.wait_status(preview_deployment["id"], {"running", "build_failed", "error", "crashed"}, 300)
    assert running["status"] == "running", system.events(preview_deployment["id"])[-5:]
    preview_port = running["assigned_port"]
    assert preview_port != port
    assert _serves(preview_port, "hello from preview", timeout=30)
    assert "hello from push v2" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text
    env = system.call("GET", f"/api/deployments/{preview_deployment['id']}/env")["data"]["variables"]
    assert [v["key"] for v in env] == ["GREETING"]

    # A new commit on the pull request (Gitea's `synchronized`) updates the preview in place, same port.
    newer = _commit(work, "hello from preview v2")
    _git(work, "push", "-q", "-f", "origin", "feature:refs/pull/1/head")
    synced = {**pull, "action": "synchronized", "pull_request": {**pull["pull_request"], "head": {"sha": newer}}}
    assert _deliver(system, repo_id, secret, "gitea", "pull_request", synced, delivery="pr-1-sync").status_code == 202
    assert _outcome(system, repo_id, "pr-1-sync").startswith(f"preview updated to {newer[:12]}")
    assert _serves(preview_port, "hello from preview v2"), system.events(preview_deployment["id"])[-5:]
    assert system.wait_status(preview_deployment["id"], {"running"}, timeout=120)["status"] == "running"

    # Closing it stops and deletes the preview: no repository, deployment, container or port left.
    closed = _deliver(system, repo_id, secret, "github", "pull_request", {**pull, "action": "closed"},
                      delivery="pr-1-closed")
    assert closed.status_code == 202
    assert "removed" in _outcome(system, repo_id, "pr-1-closed")
    assert system.call("GET", f"/api/repositories/{preview['id']}", expect=404)["error_code"] == "REPOSITORY_NOT_FOUND"
    gone = system.call("GET", f"/api/deployments/{preview_deployment['id']}", expect=404)
    assert gone["error_code"] == "DEPLOYMENT_NOT_FOUND"
    assert system.containers(engine, preview_deployment["id"]) == []
    assert os_port_free("0.0.0.0", preview_port)
    assert not Path(preview["path"]).exists()
    # A late update of the closed request (the host keeps its ref) does not bring the preview back.
    late_sync = _deliver(system, repo_id, secret, "github", "pull_request", {**synced, "action": "synchronize"},
                         delivery="pr-1-late-sync")
    assert late_sync.status_code == 202
    assert "was closed" in _outcome(system, repo_id, "pr-1-late-sync")
    assert not [r for r in system.call("GET", "/api/repositories")["data"] if r["preview_of"] == repo_id]

    # A new secret replaces the old one at once.
    rotated = system.call("POST", f"/api/repositories/{repo_id}/hook")["data"]["secret"]
    assert rotated != secret
    stale = _deliver(system, repo_id, secret, "github", "push", push)
    assert stale.status_code == 401 and stale.json()["error_code"] == "WEBHOOK_SIGNATURE_INVALID"
    assert _deliver(system, repo_id, rotated, "github", "push", push).status_code == 202
    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})


def test_git_poller_deploys_a_new_commit_without_a_webhook(
    engine: docker.DockerClient, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.support import running_system

    work = copy_fixture("python-flask", tmp_path, git=True)
    bare = tmp_path / "host.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    _git(work, "remote", "add", "origin", str(bare))
    home = tmp_path_factory.mktemp("portside-poll-home")
    with running_system(home, engine, extra_env={"PORTSIDE_GIT_POLL_SECONDS": "1"}) as system:
        repo_id = system.call("POST", "/api/repositories", json={"url": f"file://{bare}"})["data"]["id"]
        deployment_id = system.call("POST", f"/api/deployments/generate/{repo_id}", json={})["data"]["deployment_id"]
        # Polls of an unchanged branch deploy nothing: the generated deployment stays ready.
        time.sleep(5)
        assert system.call("GET", f"/api/deployments/{deployment_id}")["data"]["status"] == "ready"
        pushed = _commit(work, "hello from the poller")
        _git(work, "push", "-q", "origin", "main")
        running = system.wait_status(deployment_id, {"running", "build_failed", "error", "crashed"}, timeout=300)
        assert running["status"] == "running", system.events(deployment_id)[-5:]
        assert _serves(running["assigned_port"], "hello from the poller", timeout=30)
        assert system.call("GET", f"/api/repositories/{repo_id}")["data"]["deploy_sha"] == pushed
        assert _push_events(system, deployment_id) == 1
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})

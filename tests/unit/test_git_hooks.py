"""Webhook deliveries as each git host signs and shapes them: accepted with the right secret, refused otherwise."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from services.api.hooks import Provider, PullRequest, Push, parse, provider_of, verify
from shared.errors import ErrorCode, PortsideError

SECRET = "s3cret-hook-key"
SHA = "a" * 40


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(provider: Provider, body: bytes, secret: str = SECRET, event: str = "push") -> dict[str, str]:
    """Headers as the host sends them (GitHub's scheme, GitLab's plain token, Gitea's bare hex HMAC)."""
    if provider is Provider.GITHUB:
        return {"X-GitHub-Event": event, "X-GitHub-Delivery": "gh-1",
                "X-Hub-Signature-256": "sha256=" + _hex(secret, body)}
    if provider is Provider.GITLAB:
        name = {"push": "Push Hook", "pull_request": "Merge Request Hook"}[event]
        return {"X-Gitlab-Event": name, "X-Gitlab-Event-UUID": "gl-1", "X-Gitlab-Token": secret}
    # Gitea sends GitHub's event header too; its own signature header decides.
    return {"X-Gitea-Event": event, "X-GitHub-Event": event, "X-Gitea-Delivery": "gt-1",
            "X-Gitea-Signature": _hex(secret, body)}


PUSH = json.dumps({"ref": "refs/heads/main", "after": SHA, "repository": {"default_branch": "main"},
                   "project": {"default_branch": "main"}}).encode()


@pytest.mark.parametrize("provider", list(Provider))
def test_hook_delivery_signed_by_each_provider_is_verified_and_parsed(provider: Provider) -> None:
    headers = signed(provider, PUSH)
    assert provider_of(headers) is provider
    verify(provider, headers, PUSH, SECRET)
    delivery = parse(provider, headers, PUSH)
    assert delivery.action == Push(branch="main", sha=SHA, default_branch="main")
    assert delivery.delivery_id in ("gh-1", "gl-1", "gt-1")


@pytest.mark.parametrize("provider", list(Provider))
def test_hook_delivery_with_a_wrong_secret_is_refused(provider: Provider) -> None:
    headers = signed(provider, PUSH, secret="not-the-secret")
    with pytest.raises(PortsideError) as refused:
        verify(provider, headers, PUSH, SECRET)
    assert refused.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID


@pytest.mark.parametrize("provider", [Provider.GITHUB, Provider.GITEA])
def test_hook_body_changed_after_signing_is_refused(provider: Provider) -> None:
    headers = signed(provider, PUSH)
    tampered = PUSH.replace(b"main", b"evil")
    with pytest.raises(PortsideError) as refused:
        verify(provider, headers, tampered, SECRET)
    assert refused.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID


def test_hook_delivery_without_signature_is_refused() -> None:
    for headers in ({"X-GitHub-Event": "push"}, {"X-Gitea-Event": "push"}, {"X-Gitlab-Event": "Push Hook"}):
        with pytest.raises(PortsideError) as refused:
            verify(provider_of(headers), headers, PUSH, SECRET)
        assert refused.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID


def test_hook_from_an_unknown_sender_is_refused_as_unsigned() -> None:
    with pytest.raises(PortsideError) as refused:
        provider_of({"Content-Type": "application/json"})
    assert refused.value.code is ErrorCode.WEBHOOK_SIGNATURE_INVALID


def test_hook_tag_push_branch_deletion_and_ping_deploy_nothing() -> None:
    for payload in ({"ref": "refs/tags/v1", "after": SHA}, {"ref": "refs/heads/main", "after": "0" * 40},
                    {"ref": "refs/heads/main", "after": SHA, "deleted": True}):
        body = json.dumps(payload).encode()
        assert parse(Provider.GITHUB, signed(Provider.GITHUB, body), body).action is None
    ping = b'{"zen": "Keep it logically awesome."}'
    assert parse(Provider.GITHUB, signed(Provider.GITHUB, ping, event="ping"), ping).action is None


def test_hook_pull_request_events_of_each_provider() -> None:
    github = json.dumps({"action": "opened", "number": 7, "pull_request": {
        "number": 7, "head": {"sha": SHA, "ref": "feature"}, "base": {"ref": "main"}}}).encode()
    got = parse(Provider.GITHUB, signed(Provider.GITHUB, github, event="pull_request"), github).action
    assert got == PullRequest(7, closed=False, sha=SHA, ref="refs/pull/7/head", base_branch="main")

    gitea = json.dumps({"action": "closed", "number": 3, "pull_request": {
        "number": 3, "head": {"sha": SHA}, "base": {"ref": "main"}}}).encode()
    got = parse(Provider.GITEA, signed(Provider.GITEA, gitea, event="pull_request"), gitea).action
    assert isinstance(got, PullRequest) and got.closed and got.ref == "refs/pull/3/head"

    gitlab = json.dumps({"object_kind": "merge_request", "object_attributes": {
        "iid": 5, "action": "update", "state": "opened", "target_branch": "main", "last_commit": {"id": SHA}}}).encode()
    got = parse(Provider.GITLAB, signed(Provider.GITLAB, gitlab, event="pull_request"), gitlab).action
    assert got == PullRequest(5, closed=False, sha=SHA, ref="refs/merge-requests/5/head", base_branch="main")

    merged = json.dumps({"object_attributes": {"iid": 5, "action": "merge", "state": "merged"}}).encode()
    got = parse(Provider.GITLAB, signed(Provider.GITLAB, merged, event="pull_request"), merged).action
    assert isinstance(got, PullRequest) and got.closed

    reopened = json.dumps({"action": "reopened", "number": 7, "pull_request": {"number": 7}}).encode()
    got = parse(Provider.GITHUB, signed(Provider.GITHUB, reopened, event="pull_request"), reopened).action
    assert isinstance(got, PullRequest) and got.state == "reopened"

    labelled = json.dumps({"action": "labeled", "number": 7, "pull_request": {"number": 7}}).encode()
    assert parse(Provider.GITHUB, signed(Provider.GITHUB, labelled, event="pull_request"), labelled).action is None


def test_hook_delivery_without_an_id_is_named_by_its_body() -> None:
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}
    first, again = parse(Provider.GITLAB, headers, PUSH), parse(Provider.GITLAB, headers, PUSH)
    assert first.delivery_id == again.delivery_id and first.delivery_id.startswith("sha256:")


def test_hook_body_that_is_not_json_is_a_validation_error() -> None:
    with pytest.raises(PortsideError) as refused:
        parse(Provider.GITHUB, signed(Provider.GITHUB, b"payload=%7B%7D"), b"payload=%7B%7D")
    assert refused.value.code is ErrorCode.VALIDATION_ERROR

"""Git host webhooks: which provider sent a delivery, whether its signature or token matches the repository's hook
secret, and what it asks for (a push to a branch, a pull/merge request opened, updated or closed). Pure: no
database, no network, so every provider's scheme is unit-tested."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import ErrorCode, PortsideError

HEX_SHA = frozenset("0123456789abcdef")


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"


@dataclass(frozen=True)
class Push:
    branch: str
    sha: str | None
    # The repository's default branch as the host says it (what a repository without a branch tracks).
    default_branch: str | None


@dataclass(frozen=True)
class PullRequest:
    number: int
    closed: bool
    sha: str | None
    # The ref the host keeps the request's head under (forks included): refs/pull/N/head, refs/merge-requests/N/head.
    ref: str
    base_branch: str | None
    reopened: bool = False

    @property
    def state(self) -> str:
        """What the delivery says of the request's lifetime: `closed`, `reopened`, or `open` (opened, updated)."""
        return "closed" if self.closed else "reopened" if self.reopened else "open"


@dataclass(frozen=True)
class Delivery:
    provider: Provider
    delivery_id: str
    event: str
    action: Push | PullRequest | None  # None: an event Portside does not act on (ping, tag, comment, ...)


def _refused(message: str) -> PortsideError:
    return PortsideError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, message)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name) or headers.get(name.lower())
    return value.strip() if value else None


def provider_of(headers: Mapping[str, str]) -> Provider:
    """Who sent the delivery, by its headers; Gitea also sends GitHub's, so Gitea's own are looked at first."""
    if _header(headers, "X-Gitea-Signature") or _header(headers, "X-Gitea-Event"):
        return Provider.GITEA
    if _header(headers, "X-Gitlab-Token") or _header(headers, "X-Gitlab-Event"):
        return Provider.GITLAB
    if _header(headers, "X-Hub-Signature-256") or _header(headers, "X-GitHub-Event"):
        return Provider.GITHUB
    # Unsigned is unsigned, whoever sent it: the same 401 as a wrong signature.
    raise _refused("This is not a signed GitHub, GitLab or Gitea webhook delivery (no X-Hub-Signature-256, "
                   "X-Gitlab-Token or X-Gitea-Signature header); point the git host's webhook at this URL with the "
                   "repository's hook secret.")


def sign(secret: str, body: bytes) -> str:
    """HMAC-SHA256 of the body as lowercase hex (GitHub prefixes it with `sha256=`, Gitea sends it bare)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(provider: Provider, headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """WEBHOOK_SIGNATURE_INVALID unless the delivery carries the provider's proof of `secret`; comparisons take
    the same time whatever matches."""
    if provider is Provider.GITLAB:
        token = _header(headers, "X-Gitlab-Token")
        if not token or not hmac.compare_digest(token.encode(), secret.encode()):
            raise _refused("X-Gitlab-Token does not match this repository's hook secret; copy the secret from "
                           "GET /api/repositories/{id}/hook into the GitLab webhook's secret token.")
        return
    if provider is Provider.GITHUB:
        given = _header(headers, "X-Hub-Signature-256") or ""
        expected = "sha256=" + sign(secret, body)
        name = "X-Hub-Signature-256"
    else:
        given = _header(headers, "X-Gitea-Signature") or ""
        expected = sign(secret, body)
        name = "X-Gitea-Signature"
    if not given or not hmac.compare_digest(given.lower().encode(), expected.encode()):
        raise _refused(f"{name} does not match the body signed with this repository's hook secret; set the "
                       "webhook's secret to the one from GET /api/repositories/{id}/hook (content type JSON).")


def _sha(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.lower()
    if len(value) not in (40, 64) or not set(value) <= HEX_SHA or set(value) == {"0"}:
        return None  # the all-zero sha of a deleted branch is no commit to deploy
    return value


def _branch(ref: object) -> str | None:
    if isinstance(ref, str) and ref.startswith("refs/heads/"):
        return ref.removeprefix("refs/heads/")
    return None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, "The pull request delivery has no valid number.")
    return value


def _push(provider: Provider, payload: dict) -> Push | None:
    branch = _branch(payload.get("ref"))
    if branch is None or payload.get("deleted") is True:
        return None  # a tag, or a branch deleted
    sha = _sha(payload.get("after") or payload.get("checkout_sha"))
    if sha is None:
        return None
    holder = _dict(payload.get("project")) if provider is Provider.GITLAB else _dict(payload.get("repository"))
    default = holder.get("default_branch")
    return Push(branch=branch, sha=sha, default_branch=default if isinstance(default, str) else None)


def _pull_request(provider: Provider, payload: dict) -> PullRequest | None:
    if provider is Provider.GITLAB:
        attrs = _dict(payload.get("object_attributes"))
        number = _number(attrs.get("iid"))
        action = attrs.get("action")
        closed = action in ("close", "merge") or attrs.get("state") in ("closed", "merged")
        if not closed and action not in ("open", "reopen", "update", None):
            return None
        base = attrs.get("target_branch")
        return PullRequest(number, closed, _sha(_dict(attrs.get("last_commit")).get("id")),
                           f"refs/merge-requests/{number}/head", base if isinstance(base, str) else None,
                           reopened=action == "reopen")
    pull = _dict(payload.get("pull_request"))
    number = _number(pull.get("number", payload.get("number")))
    action = payload.get("action")
    closed = action == "closed"
    if not closed and action not in ("opened", "reopened", "synchronize", "synchronized"):
        return None  # labelled, assigned, edited, review requested: nothing to deploy
    base = _dict(pull.get("base")).get("ref")
    return PullRequest(number, closed, _sha(_dict(pull.get("head")).get("sha")), f"refs/pull/{number}/head",
                       base if isinstance(base, str) else None, reopened=action == "reopened")


EVENT_HEADERS = {Provider.GITHUB: "X-GitHub-Event", Provider.GITLAB: "X-Gitlab-Event", Provider.GITEA: "X-Gitea-Event"}
DELIVERY_HEADERS = {
    Provider.GITHUB: ("X-GitHub-Delivery",),
    Provider.GITLAB: ("X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "Idempotency-Key"),
    Provider.GITEA: ("X-Gitea-Delivery",),
}
PUSH_EVENTS = {"push", "push hook"}
PULL_EVENTS = {"pull_request", "merge request hook"}


def parse(provider: Provider, headers: Mapping[str, str], body: bytes) -> Delivery:
    """A verified delivery's meaning. A body that is not a JSON object is a VALIDATION_ERROR."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, "The delivery body is not JSON; set the webhook's content "
                                                        "type to application/json.") from exc
    if not isinstance(payload, dict):
        raise PortsideError(ErrorCode.VALIDATION_ERROR, "The delivery body is not a JSON object.")
    event = (_header(headers, EVENT_HEADERS[provider]) or "").lower()[:32]
    delivery_id = next((v for v in (_header(headers, h) for h in DELIVERY_HEADERS[provider]) if v), None)
    # Without an id from the host, the body itself names the delivery: a resent body is the same delivery.
    delivery_id = (delivery_id or "sha256:" + hashlib.sha256(body).hexdigest())[:128]
    action: Push | PullRequest | None = None
    if event in PUSH_EVENTS:
        action = _push(provider, payload)
    elif event in PULL_EVENTS:
        action = _pull_request(provider, payload)
    return Delivery(provider, delivery_id, event or "unknown", action)

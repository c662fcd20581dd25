"""Webhooks from git hosts: no login, the delivery's signature (or GitLab's token) proves it instead."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from sqlalchemy.dialects.postgresql import insert

from services.api.auth import audit
from services.api.deps import GitHooksDep, IdPath, SessionDep, SettingsDep
from services.api.gitpush import stored_secret
from services.api.hooks import PullRequest, Push, parse, provider_of, verify
from services.api.schemas import Envelope, HookReceived
from shared.db.models import GitDelivery, Repository
from shared.errors import ErrorCode, PortsideError

router = APIRouter(prefix="/api/hooks", tags=["hooks"])


@router.post("/git/{repo_id}", status_code=202, response_model=Envelope[HookReceived])
async def git_hook(
    repo_id: IdPath, request: Request, response: Response, session: SessionDep, settings: SettingsDep,
    git_hooks: GitHooksDep,
) -> Envelope[HookReceived]:
    """A push or pull/merge request delivery from GitHub (X-Hub-Signature-256), GitLab (X-Gitlab-Token) or Gitea
    (X-Gitea-Signature), signed with the repository's hook secret (GET /api/repositories/{id}/hook);
    WEBHOOK_SIGNATURE_INVALID (401) otherwise. A push to the tracked branch deploys its newest commit; a pull request
    opened or updated deploys a preview, closed removes it. Answered at once (202) and acted on in the background;
    a delivery id seen before is answered `duplicate` (200) and does nothing."""
    body = await request.body()
    provider = provider_of(request.headers)
    repo = await session.get(Repository, repo_id)
    secret = stored_secret(settings, repo) if repo is not None and repo.preview_of is None else None
    if secret is None:
        # An unknown repository answers like a wrong signature: an anonymous caller learns nothing from the id.
        raise PortsideError(ErrorCode.WEBHOOK_SIGNATURE_INVALID,
                            "No hook secret matches this delivery; take the webhook URL and secret from "
                            "GET /api/repositories/{id}/hook.")
    assert repo is not None
    verify(provider, request.headers, body, secret)
    delivery = parse(provider, request.headers, body)
    action = delivery.action
    ref = None if action is None else f"refs/heads/{action.branch}" if isinstance(action, Push) else action.ref
    # A pull request's state rides in the event ("pull_request:closed"): a late update after a close must not
    # bring the preview back (services/api/gitpush.py reads it).
    event = f"{delivery.event[:20]}:{action.state}" if isinstance(action, PullRequest) else delivery.event
    inserted = await session.scalar(
        insert(GitDelivery).values(
            repository_id=repo.id, delivery_id=delivery.delivery_id, provider=delivery.provider.value,
            event=event, ref=ref, commit_sha=action.sha if action else None,
            outcome=None if action else f"ignored: {delivery.provider} event `{delivery.event}` deploys nothing",
        ).on_conflict_do_nothing(constraint="uq_git_deliveries_repository_delivery").returning(GitDelivery.id)
    )
    status: Literal["accepted", "duplicate", "ignored"] = (
        "duplicate" if inserted is None else "accepted" if action is not None else "ignored"
    )
    if inserted is not None:
        await audit(session, request, None, "git_delivery", f"repository:{repo.id}",
                    f"{delivery.provider} {delivery.event} {delivery.delivery_id}",
                    email=f"{delivery.provider} webhook")
    await session.commit()
    if status == "accepted":
        git_hooks.submit(repo.id, inserted, action)
    else:
        response.status_code = 200
    return Envelope(data=HookReceived(delivery_id=delivery.delivery_id, provider=delivery.provider.value,
                                      event=delivery.event, status=status))

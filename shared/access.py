"""Who may see what: one rule for the API's answers, the event stream (GET /api/events) and webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import Deployment, Repository

# Admins and viewers see everything; a member sees what they own.
SEE_ALL_ROLES = frozenset({"admin", "viewer"})


def can_see(role: str, user_id: int, owner_id: int | None) -> bool:
    return role in SEE_ALL_ROLES or owner_id == user_id


class EventOwners:
    """The owner of what a public event is about (its deployment or repository), looked up once per id.
    A deleted deployment has no owner any more: only those who see everything see its last events, except
    `deployment.deleted`, which names the owner it had."""

    def __init__(self) -> None:
        self._deployments: dict[int, int | None] = {}
        self._repositories: dict[int, int | None] = {}

    async def owner(self, session: AsyncSession, payload: dict[str, Any]) -> int | None:
        if isinstance(payload.get("deployment_id"), int):
            key = payload["deployment_id"]
            if key not in self._deployments:
                self._deployments[key] = await session.scalar(select(Deployment.owner_id).where(Deployment.id == key))
            if self._deployments[key] is None and isinstance(payload.get("owner_id"), int):
                return int(payload["owner_id"])
            return self._deployments[key]
        if isinstance(payload.get("repository_id"), int):
            key = payload["repository_id"]
            if key not in self._repositories:
                self._repositories[key] = await session.scalar(
                    select(Repository.owner_id).where(Repository.id == key))
            return self._repositories[key]
        return None

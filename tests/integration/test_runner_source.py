"""The runner gets the source it starts from itself when the API's clone is not on its disk (shared/checkout.py):
real nats-server, PostgreSQL and git over file://. A commit it cannot fetch ends the start in `error` with the
fetch's code, the port released and nothing left in its workspace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.runner import service
from shared.checkout import WORKSPACE
from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.db.status import PORT_HOLDING
from shared.errors import ErrorCode
from shared.worker import WorkerContext, make_context
from tests.conftest import copy_fixture


@pytest.fixture
async def runner(settings: Settings, tmp_path: Path) -> AsyncIterator[WorkerContext]:
    # Its own home, as on another machine: nothing of the API's clones.
    ctx = make_context("runner", settings.model_copy(update={"home": tmp_path / "runner-home"}))
    await ctx.start()
    yield ctx
    await ctx.close()


async def test_runner_without_the_apis_clone_and_an_unfetchable_commit_ends_in_error_with_the_port_released(
    runner: WorkerContext, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    origin = copy_fixture("python-flask", tmp_path, git=True)
    registered = "0" * 40  # a commit the remote does not have (history rewritten after the API cloned)
    async with sessions() as session:
        repo = Repository(name="flask", path=f"/var/lib/portside/repos/not-here-{uuid4().hex[:8]}",
                          url=f"file://{origin}", branch="main", commit_sha=registered)
        session.add(repo)
        await session.flush()
        deployment = Deployment(repository_id=repo.id, repo_name="flask", status="building", app_service="app",
                                image_tag="portside-test/flask:1", compose_content="services: {}\n")
        session.add(deployment)
        await session.commit()
        deployment_id = deployment.id

    await service.run(runner, deployment_id, "corr-runner-source")

    async with sessions() as session:
        row = await session.get(Deployment, deployment_id)
        assert row is not None
        assert (row.status, row.error_code) == ("error", ErrorCode.GIT_CLONE_FAILED), row.error_message
        assert row.status not in PORT_HOLDING  # the port is free for another deployment
        assert registered in (row.error_message or "") and "pull the repository again" in (row.error_message or "")
    assert list((runner.settings.home / WORKSPACE).iterdir()) == []

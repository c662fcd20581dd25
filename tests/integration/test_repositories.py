"""Pulling and deleting a repository against a real PostgreSQL and real git (a file:// clone)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import service
from services.api.bus import Bus
from shared.config import Settings
from shared.db.models import Deployment, Repository
from shared.errors import ErrorCode, PortsideError
from tests.conftest import copy_fixture

GIT = ["git", "-c", "user.name=portside-tests", "-c", "user.email=tests@portside.invalid"]


def _commit(source: Path, name: str, text: str) -> str:
    (source / name).write_text(text)
    subprocess.run([*GIT, "add", "-A"], cwd=source, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", f"add {name}"], cwd=source, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, check=True, capture_output=True,
                          text=True).stdout.strip()


def _rename_branch(source: Path) -> None:
    subprocess.run(["git", "-C", str(source), "branch", "-m", "main", "renamed"], check=True)


def _head(folder: Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


async def _clone(sessions: async_sessionmaker[AsyncSession], settings: Settings, source: Path) -> Repository:
    async with sessions() as session:
        return await service.register_repository(session, settings, path=None, url=f"file://{source}",
                                                 branch="main", name=None)


async def test_pull_checks_out_the_new_commit_and_keeps_untracked_files(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    repo = await _clone(sessions, settings, source)
    folder = Path(repo.path)
    assert folder.parent == settings.repos_dir and not (folder / "NEWS.md").exists()
    (folder / ".portside").mkdir()
    (folder / ".portside" / "Dockerfile").write_text("FROM scratch\n")  # a generated file git does not track
    newest = _commit(source, "NEWS.md", "second commit\n")

    async with sessions() as session:
        pulled = await service.pull_repository(session, settings, repo.id)
    assert pulled.id == repo.id
    assert (folder / "NEWS.md").read_text() == "second commit\n"
    assert _head(folder) == newest
    assert (folder / ".portside" / "Dockerfile").exists()


async def test_pull_of_a_vanished_source_is_a_clear_error_and_leaves_the_clone(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    repo = await _clone(sessions, settings, source)
    before = _head(Path(repo.path))
    _rename_branch(source)
    async with sessions() as session:
        with pytest.raises(PortsideError) as caught:
            await service.pull_repository(session, settings, repo.id)
    assert caught.value.code == ErrorCode.GIT_PULL_FAILED
    assert _head(Path(repo.path)) == before


async def test_pull_of_a_local_directory_answers_it_unchanged(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    async with sessions() as session:
        repo = await service.register_repository(session, settings, path=str(source), url=None, branch=None,
                                                 name=None)
    async with sessions() as session:
        pulled = await service.pull_repository(session, settings, repo.id)
    assert pulled.path == str(source.resolve())


@pytest.mark.parametrize("status", ["queued", "building", "running", "stopping"])
async def test_delete_is_refused_while_a_deployment_is_busy(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path, status: str
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    repo = await _clone(sessions, settings, source)
    async with sessions() as session:
        session.add(Deployment(repository_id=repo.id, repo_name=repo.name, status=status))
        await session.commit()
    async with sessions() as session:
        with pytest.raises(PortsideError) as caught:
            await service.delete_repository(session, Bus(settings), settings, repo.id)
    assert caught.value.code == ErrorCode.INVALID_STATE and "stop them first" in caught.value.message
    assert Path(repo.path).is_dir()
    async with sessions() as session:
        assert await session.get(Repository, repo.id) is not None
    if status in ("queued", "building"):
        async with sessions() as session:
            with pytest.raises(PortsideError) as refused:
                await service.pull_repository(session, settings, repo.id)
        assert refused.value.code == ErrorCode.INVALID_STATE


async def test_delete_removes_the_row_and_the_clone_folder_but_never_a_local_directory(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, tmp_path: Path
) -> None:
    source = copy_fixture("python-flask", tmp_path, git=True)
    clone = await _clone(sessions, settings, source)
    async with sessions() as session:
        local = await service.register_repository(session, settings, path=str(source), url=None, branch=None,
                                                  name=None)
    for repo in (clone, local):
        async with sessions() as session:
            await service.delete_repository(session, Bus(settings), settings, repo.id)
        async with sessions() as session:
            assert await session.get(Repository, repo.id) is None
    assert not Path(clone.path).exists()
    assert source.is_dir() and (source / ".git").is_dir()

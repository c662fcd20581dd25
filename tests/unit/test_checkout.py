"""Where a worker finds a repository's source (shared/checkout.py), with real git over file:// (no network): the
API's clone when it is on this disk; otherwise the worker's own checkout of exactly the registered commit."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from services.runner.service import StartPlan, _with_source
from shared.checkout import STALE_SECONDS, WORKSPACE, keep_in_use, source_root
from shared.config import Settings
from shared.db.models import Repository
from shared.errors import ErrorCode, PortsideError
from shared.git import head_commit
from tests.conftest import copy_fixture

GIT = ["git", "-c", "user.name=portside-tests", "-c", "user.email=tests@portside.invalid"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "worker-home", allow_local_repos=True)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return copy_fixture("python-flask", tmp_path, git=True)


def _commit(origin: Path, name: str, text: str) -> str:
    (origin / name).write_text(text)
    subprocess.run([*GIT, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", name], cwd=origin, check=True)
    sha = head_commit(origin)
    assert sha
    return sha


def _repo(origin: Path, commit: str | None, path: str = "/var/lib/portside/repos/elsewhere-1234") -> Repository:
    return Repository(id=7, name="python-flask", path=path, url=f"file://{origin}", branch="main", commit_sha=commit)


def test_checkout_uses_the_apis_clone_when_it_is_on_this_disk(settings: Settings, origin: Path) -> None:
    assert source_root(settings, _repo(origin, head_commit(origin), path=str(origin))) == origin
    assert not (settings.home / WORKSPACE).exists()


def test_checkout_fetches_the_registered_commit_not_what_the_branch_moved_to(
    settings: Settings, origin: Path
) -> None:
    registered = _commit(origin, "VERSION", "1\n")
    _commit(origin, "VERSION", "2\n")  # pushed after the API cloned
    root = source_root(settings, _repo(origin, registered))
    assert root.parent == settings.home / WORKSPACE and head_commit(root) == registered
    assert (root / "VERSION").read_text() == "1\n" and (root / "app.py").is_file()
    assert source_root(settings, _repo(origin, registered)) == root  # fetched once, then reused
    assert [p.name for p in (settings.home / WORKSPACE).iterdir()] == [root.name]


def test_checkout_without_a_recorded_commit_takes_the_branch_as_it_is(settings: Settings, origin: Path) -> None:
    newest = _commit(origin, "VERSION", "3\n")
    assert head_commit(source_root(settings, _repo(origin, None))) == newest


def test_checkout_of_a_commit_the_remote_no_longer_has_fails_and_leaves_nothing(
    settings: Settings, origin: Path
) -> None:
    with pytest.raises(PortsideError) as refused:
        source_root(settings, _repo(origin, "0" * 40))
    assert refused.value.code == ErrorCode.GIT_CLONE_FAILED and "pull the repository again" in refused.value.message
    assert list((settings.home / WORKSPACE).iterdir()) == []


def test_checkout_of_a_local_directory_on_another_machine_says_where_it_builds(settings: Settings) -> None:
    local = Repository(id=8, name="mine", path="/srv/projects/mine-not-here", url=None, branch=None)
    with pytest.raises(PortsideError) as refused:
        source_root(settings, local)
    assert refused.value.code == ErrorCode.REPO_NOT_FOUND
    assert "not on this worker's disk" in refused.value.message and "git URL" in refused.value.message


async def test_checkout_gives_the_runner_its_own_copy_when_the_apis_clone_is_elsewhere(
    settings: Settings, origin: Path
) -> None:
    # The runner reads the repository's compose files, env files and bind-mount sources from this copy.
    registered = head_commit(origin)
    elsewhere = Path("/var/lib/portside/repos/elsewhere-1234")
    plan = StartPlan(deployment_id=1, repo_root=elsewhere, app_dir=elsewhere, compose_text="", compose_files=[],
                     app_service="app", image_tag="demo:1", port=20000, requested_port=None)
    started = await _with_source(settings, plan, _repo(origin, registered), "")
    assert started.repo_root == (settings.home / WORKSPACE / f"7-{registered}").resolve()
    assert started.app_dir == started.repo_root and (started.app_dir / "app.py").is_file()
    assert head_commit(started.repo_root) == registered


def test_checkout_an_app_still_mounts_from_survives_a_newer_commits_fetch(settings: Settings, origin: Path) -> None:
    first = source_root(settings, _repo(origin, head_commit(origin)))
    unused = source_root(settings, _repo(origin, _commit(origin, "VERSION", "1\n")))
    hours_ago = time.time() - 2 * STALE_SECONDS
    for old in (first, unused):
        os.utime(old, (hours_ago, hours_ago))
    keep_in_use(settings, [str(first / "data"), "/srv/elsewhere"])  # the reconciler: a container bind-mounts it
    newest = source_root(settings, _repo(origin, _commit(origin, "VERSION", "2\n")))
    assert first.is_dir() and newest.is_dir() and not unused.exists()

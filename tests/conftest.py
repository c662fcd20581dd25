"""Shared fixtures. Tests are marked by folder (unit / integration / e2e); integration and e2e use real
servers: an embedded nats-server and PostgreSQL from PyPI packages, and a real Docker engine."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.embedded import EmbeddedNats, EmbeddedPostgres, start_nats, start_postgres
from shared.migrations import upgrade

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_REPOS = ROOT / "tests" / "fixtures" / "repos"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts and parts[0] in ("unit", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    # A short path: PostgreSQL's Unix socket path must stay under ~100 characters.
    # With a password, as `portside up` runs it: every test connects the way Portside does.
    server = start_postgres(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete", password="test-pw/=+")
    upgrade(server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(
    nats_server: EmbeddedNats, postgres_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("home"),
        nats_url=nats_server.url,
        database_url=postgres_server.url,
        ack_wait_seconds=5,
        worker_timeout_seconds=20,
        allow_local_repos=True,
    )


def copy_fixture(name: str, dest: Path, git: bool = False) -> Path:
    """A fresh copy of a fixture repo, optionally as a real git repository with one commit."""
    target = dest / name
    shutil.copytree(FIXTURE_REPOS / name, target, ignore=shutil.ignore_patterns("expected.json", ".deployment"))
    if git:
        env_args = [
            "-c",
            "user.name=portside-tests",
            "-c",
            "user.email=tests@portside.invalid",
            "-c",
            "init.defaultBranch=main",
        ]
        subprocess.run(["git", *env_args, "init", "-q"], cwd=target, check=True)
        subprocess.run(["git", *env_args, "add", "-A"], cwd=target, check=True)
        subprocess.run(["git", *env_args, "commit", "-q", "-m", "fixture"], cwd=target, check=True)
    return target

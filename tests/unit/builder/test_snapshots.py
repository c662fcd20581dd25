"""Snapshots of everything Portside generates for every fixture repo (a new fixture folder gets a snapshot).

Regenerate after an intended change: PORTSIDE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/unit/builder -q
then read the diff of tests/snapshots/ before committing it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.builder.generate import generate_files
from services.detector.service import detect
from shared.docker import Owner
from shared.errors import PortsideError
from tests.conftest import FIXTURE_REPOS, ROOT

SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE = os.environ.get("PORTSIDE_UPDATE_SNAPSHOTS") == "1"
FIXTURES = sorted(p.name for p in FIXTURE_REPOS.iterdir() if p.is_dir())


def render(name: str) -> dict[str, str]:
    """The files for one fixture (generated passwords are `${PORTSIDE_..._PASSWORD}` references, no values)."""
    root = FIXTURE_REPOS / name
    try:
        files = generate_files(detect(root), root, owner=Owner("portside", 1), repo_name=name)
    except PortsideError as exc:
        return {"unsupported.txt": f"{exc.message}\n"}
    meta = (f"compose_files: {files.compose_files}\napp_service: {files.app_service}\nport: {files.port}\n"
            + "".join(f"note: {n}\n" for n in files.notes))
    return {"Dockerfile": files.dockerfile, "docker-compose.yml": files.compose, ".dockerignore": files.dockerignore,
            "meta.txt": meta}


@pytest.mark.parametrize("name", FIXTURES)
def test_generated_files_match_snapshot(name: str) -> None:
    rendered = render(name)
    folder = SNAPSHOTS / name
    if UPDATE:
        if folder.exists():
            for old in folder.iterdir():
                old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        for file, text in rendered.items():
            (folder / file).write_text(text)
    stored = {p.name: p.read_text() for p in folder.iterdir()} if folder.is_dir() else {}
    assert stored, f"no snapshot for {name}; run with PORTSIDE_UPDATE_SNAPSHOTS=1 and review tests/snapshots/{name}"
    assert sorted(stored) == sorted(rendered)
    for file, text in rendered.items():
        assert text == stored[file], f"{name}/{file} changed; if intended, regenerate with PORTSIDE_UPDATE_SNAPSHOTS=1"


def test_every_snapshot_has_a_fixture() -> None:
    stale = (
        sorted(p.name for p in SNAPSHOTS.iterdir() if p.is_dir() and p.name not in FIXTURES)
        if SNAPSHOTS.is_dir()
        else []
    )
    assert stale == [], f"snapshots without a fixture repo: {stale}; delete them"


def snapshot_path(name: str) -> Path:
    return SNAPSHOTS / name

"""Helpers for detector tests: build small real trees on disk (no mocks)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

Tree = dict[str, "str | bytes | dict | list"]


def write_tree(root: Path, files: Tree) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, (dict, list)):
            path.write_text(json.dumps(content))
        else:
            path.write_text(content)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Callable[[Tree], Path]:
    """`repo({"package.json": {...}, "server.js": "..."})` -> the repo root."""

    def make(files: Tree) -> Path:
        root = tmp_path / "repo"
        root.mkdir(exist_ok=True)
        return write_tree(root, files)

    return make

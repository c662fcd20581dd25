"""SourceTree: confinement to the repo, skipped folders, bounded walks, unreadable and invalid files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.detector.service import detect
from shared.source import SourceTree

pytestmark = pytest.mark.unit


def test_source_refuses_parent_paths(repo) -> None:
    root = repo({"a.txt": "x"})
    (root.parent / "secret.txt").write_text("secret")
    src = SourceTree(root)
    assert src.read_text("../secret.txt") is None
    assert not src.has_file("../secret.txt")
    assert src.read_text("/etc/hostname") is None


def test_source_refuses_symlink_pointing_out_of_repo(repo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "requirements.txt").write_text("flask\n")
    root = repo({"README.md": "hi"})
    os.symlink(outside / "requirements.txt", root / "requirements.txt")
    os.symlink(outside, root / "linked")
    src = SourceTree(root)
    assert not src.has_file("requirements.txt")
    assert src.read_text("requirements.txt") is None
    assert "linked/requirements.txt" not in src.files()
    assert detect(root).stack == "unknown"


def test_source_follows_symlink_inside_repo(repo) -> None:
    root = repo({"real/package.json": '{"name": "x"}'})
    os.symlink(root / "real" / "package.json", root / "package.json")
    assert SourceTree(root).read_json("package.json") == {"name": "x"}


def test_source_rejects_app_path_outside_repo(repo) -> None:
    root = repo({"a": "b"})
    with pytest.raises(ValueError):
        SourceTree(root, "../elsewhere")
    with pytest.raises(ValueError):
        SourceTree(root, "/etc")


def test_source_skips_dependency_and_build_dirs(repo) -> None:
    root = repo({"src/app.js": "", "node_modules/express/index.js": "", ".git/config": "", "dist/app.js": "",
                 "vendor/autoload.php": "", "__pycache__/x.pyc": b"\x00"})
    assert SourceTree(root).files() == ["src/app.js"]


def test_source_does_not_read_binary_files_as_text(repo) -> None:
    root = repo({"blob.bin": b"\x89PNG\x00\x00\x01binary", "big.txt": "x" * 2_000_001})
    src = SourceTree(root)
    assert src.read_text("blob.bin") is None
    assert src.read_text("big.txt") is None


@pytest.mark.parametrize(("name", "content", "reader"), [
    ("package.json", "{ not json", "read_json"),
    ("pyproject.toml", "[project\nname=", "read_toml"),
    ("compose.yaml", "services: [unclosed", "read_yaml"),
])
def test_source_invalid_manifest_becomes_warning(repo, name: str, content: str, reader: str) -> None:
    src = SourceTree(repo({name: content}))
    assert getattr(src, reader)(name) is None
    assert any(name in w and "invalid" in w for w in src.warnings)
    assert name in src.invalid


def test_source_walk_is_bounded(repo) -> None:
    root = repo({f"d{i // 100}/f{i}.txt": "" for i in range(1500)})
    src = SourceTree(root, max_files=500)
    assert len(src.files()) < 500
    assert src.truncated
    assert any("stopped walking" in w for w in src.warnings)


def test_source_glob_matches_root_and_nested(repo) -> None:
    src = SourceTree(repo({"a.py": "", "pkg/b.py": "", "pkg/deep/c.py": "", "x.txt": ""}))
    assert src.glob("**/*.py") == ["a.py", "pkg/b.py", "pkg/deep/c.py"]
    assert src.glob("*.py", max_depth=0) == ["a.py"]


def test_source_find_up_reaches_workspace_root(repo) -> None:
    root = repo({"pnpm-lock.yaml": "lockfileVersion: '9.0'\n", "apps/web/package.json": "{}"})
    found = SourceTree(root, "apps/web").find_up("pnpm-lock.yaml")
    assert found is not None and found[0] == "../../pnpm-lock.yaml"
    assert SourceTree(root, "apps/web").find_up("yarn.lock") is None


def test_detect_survives_symlink_loop(repo) -> None:
    root = repo({"package.json": '{"scripts": {"start": "node index.js"}}', "index.js": ""})
    os.symlink(root / "loop", root / "loop")
    os.symlink(root, root / "self")
    det = detect(root)
    assert det.stack == "node"

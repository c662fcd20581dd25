"""SourceTree: the only way detection reads a repository.

Rooted at the repo, it refuses paths (and symlinks) that leave it, skips dependency and build-output folders,
walks a bounded number of entries, and turns unreadable or invalid manifests into warnings instead of exceptions.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

# Folders that hold installed dependencies, VCS data or build output: never app source, and often huge.
SKIP_DIRS = frozenset({
    "node_modules", ".git", ".hg", ".svn", "vendor", "__pycache__", ".venv", "venv", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".next", ".nuxt", ".svelte-kit", ".turbo", ".cache",
    ".parcel-cache", ".output", ".vercel", ".netlify", "dist", "build", "target", "_build", "deps", "bin",
    "obj", ".gradle", ".idea", ".vscode", "coverage", ".terraform", "bower_components", ".bundle",
    ".dart_tool", ".expo", ".angular", "site-packages", ".deployment",
})
MAX_FILES = 100_000
MAX_DEPTH = 12
# Manifests and source files worth reading are small; anything bigger is data, a bundle or a binary.
MAX_READ_BYTES = 1_000_000
# A YAML document whose aliases expand to more nodes than this is a "billion laughs", not a config file.
MAX_YAML_NODES = 200_000


class YamlTooLarge(ValueError):
    """The document's aliases expand past MAX_YAML_NODES."""


class ComposeLoader(yaml.SafeLoader):
    """Safe YAML that accepts Compose's `!reset` / `!override` tags."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


ComposeLoader.add_multi_constructor("!", _tagged)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes in the tree once every alias is expanded (each shared node counted once per use, memoised)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        sizes[key] = 1  # a recursive alias counts once; PyYAML refuses to construct it anyway
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > limit:
            raise YamlTooLarge(f"the document expands to more than {limit} nodes through aliases")
        sizes[key] = total
        return total

    return size(root)


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of one YAML document, refused when its aliases expand past MAX_YAML_NODES."""
    node = yaml.compose(text, Loader=ComposeLoader)
    if node is not None:
        _expanded_size(node, MAX_YAML_NODES)
    return node


def bounded_yaml(text: str, where: str = "") -> Any:
    """Safe, alias-bounded YAML; raises yaml.YAMLError or YamlTooLarge (both ValueErrors or YAMLErrors)."""
    node = compose_yaml(text)
    if node is None:
        return None
    loader = ComposeLoader(text)
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


class SourceTree:
    """A read-only view of one directory of a repository (the repo root or an app inside it)."""

    def __init__(self, root: Path | str, app_path: str = "", *, max_files: int = MAX_FILES) -> None:
        self.repo_root = Path(root).resolve()
        if PurePosixPath(app_path.strip()).is_absolute():
            raise ValueError(f"app_path must be relative to the repository: {app_path!r}")
        rel = PurePosixPath(app_path.strip().strip("/") or ".")
        if ".." in rel.parts:
            raise ValueError(f"app_path must stay inside the repository: {app_path!r}")
        self.app_path = "" if str(rel) == "." else str(rel)
        self.root = (self.repo_root / self.app_path).resolve()
        if not self._inside(self.root):
            raise ValueError(f"app_path leaves the repository: {app_path!r}")
        self.max_files = max_files
        self.warnings: list[str] = []
        self.truncated = False
        self._files: list[str] | None = None
        self._walked_depth = -1
        self._dirs: set[str] | None = None
        self._cache: dict[tuple[str, str], Any] = {}
        self._resolved: dict[str, Path | None] = {}
        self._root_str, self._repo_str = str(self.root), str(self.repo_root)
        # Files that exist but could not be parsed (their warning is already in `warnings`).
        self.invalid: set[str] = set()
        if not self.root.is_dir():
            self.warnings.append(f"{self.app_path or '.'} is not a directory in the repository")

    def sub(self, path: str) -> SourceTree:
        """The tree of a subdirectory (a monorepo app), still confined to the same repository."""
        joined = str(PurePosixPath(self.app_path or ".") / path)
        tree = SourceTree(self.repo_root, "" if joined == "." else joined, max_files=self.max_files)
        tree.warnings = self.warnings  # one warning list per detection run
        return tree

    # -- path safety -------------------------------------------------------------------------------------
    def _inside(self, path: Path) -> bool:
        return path == self.repo_root or self.repo_root in path.parents

    def _resolve(self, rel: str) -> Path | None:
        """The real path of `rel` under this tree, or None if it escapes the repo (by `..` or a symlink)."""
        if rel in self._resolved:
            return self._resolved[rel]
        real: Path | None = None
        parts = PurePosixPath(rel).parts
        if not PurePosixPath(rel).is_absolute() and ".." not in parts:
            joined = os.path.join(self._root_str, *parts) if parts else self._root_str
            try:
                # Most lookups are for files that are not there: one lstat answers those without a realpath.
                resolved = os.path.realpath(joined, strict=False) if os.path.lexists(joined) else None
            except (OSError, RuntimeError, ValueError):  # symlink loops, NUL bytes
                resolved = None
            # String prefix check on real paths: cheaper than Path.parents and just as strict.
            if resolved is not None and (resolved == self._repo_str or resolved.startswith(self._repo_str + os.sep)):
                real = Path(resolved)
        self._resolved[rel] = real
        return real

    # -- existence -------------------------------------------------------------------------------------
    def has_file(self, rel: str) -> bool:
        key = ("is_file", rel)
        if key not in self._cache:
            path = self._resolve(rel)
            self._cache[key] = path is not None and os.path.isfile(path)
        return self._cache[key]

    def has_dir(self, rel: str) -> bool:
        key = ("is_dir", rel)
        if key not in self._cache:
            path = self._resolve(rel)
            self._cache[key] = path is not None and os.path.isdir(path)
        return self._cache[key]

    def first_file(self, *names: str) -> str | None:
        return next((n for n in names if self.has_file(n)), None)

    def listdir(self, rel: str = "") -> list[str]:
        """Names directly inside a directory (sorted), skipping nothing; [] when it is not a safe directory."""
        path = self._resolve(rel)
        if path is None or not path.is_dir():
            return []
        try:
            return sorted(os.listdir(path))
        except OSError:
            return []

    def subdirs(self, rel: str = "") -> list[str]:
        """Child directories worth looking into (not dependency/output folders, not hidden)."""
        base = PurePosixPath(rel)
        out = []
        for name in self.listdir(rel):
            if name in SKIP_DIRS or name.startswith("."):
                continue
            child = str(base / name) if rel else name
            if self.has_dir(child):
                out.append(child)
        return out

    def find_up(self, name: str) -> tuple[str, SourceTree] | None:
        """Look for `name` here, then in parent directories up to the repo root (a workspace's lockfile).

        Returns the path relative to this tree ('../../yarn.lock') and the tree that holds it.
        """
        parts = list(PurePosixPath(self.app_path).parts) if self.app_path else []
        depth = 0
        while True:
            tree = self if depth == 0 else SourceTree(self.repo_root, "/".join(parts))
            if tree.has_file(name):
                return "../" * depth + name, tree
            if not parts:
                return None
            parts.pop()
            depth += 1

    # -- walking ---------------------------------------------------------------------------------------
    def _walk(self, limit: int) -> None:
        files: list[str] = []
        dirs: set[str] = set()
        stack: list[tuple[Path, str, int]] = [(self.root, "", 0)]
        seen = 0
        while stack:
            path, rel, depth = stack.pop()
            try:
                entries = sorted(os.scandir(path), key=lambda e: e.name)
            except OSError:
                continue
            subdirs = []
            for entry in entries:
                seen += 1
                if seen > self.max_files:
                    self.truncated = True
                    self._files, self._dirs, self._walked_depth = files, dirs, limit
                    self.warnings.append(
                        f"stopped walking after {self.max_files} entries; detection used the files seen so far")
                    return
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    if entry.is_symlink():
                        # A symlink counts only when its target stays inside the repo; never descend into one.
                        target = Path(entry.path).resolve()
                        if not self._inside(target):
                            continue
                        if target.is_file():
                            files.append(child)
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name in SKIP_DIRS or depth >= limit:
                            continue
                        dirs.add(child)
                        subdirs.append((Path(entry.path), child, depth + 1))
                    elif entry.is_file(follow_symlinks=False):
                        files.append(child)
                except (OSError, RuntimeError):  # unreadable entries and symlink loops are skipped
                    continue
            # Depth-first in name order, so the first files seen are the same on every run.
            stack.extend(reversed(subdirs))
        self._files, self._dirs, self._walked_depth = files, dirs, limit

    def files(self, max_depth: int | None = None) -> list[str]:
        """Files under this tree (relative, '/'-separated), at most `max_depth` folders deep, bounded by
        `max_files` entries. Shallow questions walk only as deep as they need, which keeps huge trees cheap."""
        limit = MAX_DEPTH if max_depth is None else min(max_depth, MAX_DEPTH)
        if self._files is None or self._walked_depth < limit:
            self._walk(limit)
        files = self._files or []
        if limit >= self._walked_depth:
            return files
        return [f for f in files if f.count("/") <= limit]

    def glob(self, pattern: str, *, max_depth: int | None = None) -> list[str]:
        """Files matching a shell pattern on the whole relative path ('**/' matches any folder, including none)."""
        parts = pattern.split("/")
        literal = 0
        while literal < len(parts) - 1 and not any(c in parts[literal] for c in "*?["):
            literal += 1
        if literal:
            # `prisma/**/*.prisma` only needs to walk prisma/, not the whole repo.
            base = "/".join(parts[:literal])
            if not self.has_dir(base):
                return []
            depth = None if max_depth is None else max_depth - literal
            if depth is not None and depth < 0:
                return []
            return [f"{base}/{f}" for f in self.sub(base).glob("/".join(parts[literal:]), max_depth=depth)]
        alt = pattern[3:] if pattern.startswith("**/") else None
        out = []
        for f in self.files(max_depth):
            if fnmatch.fnmatchcase(f, pattern) or (alt is not None and fnmatch.fnmatchcase(f, alt)):
                out.append(f)
        return out

    def iter_text(self, pattern: str, *, max_depth: int | None = None, limit: int = 200
                  ) -> Iterator[tuple[str, str]]:
        """(path, text) for up to `limit` readable text files matching `pattern`."""
        count = 0
        for f in self.glob(pattern, max_depth=max_depth):
            text = self.read_text(f)
            if text is None:
                continue
            yield f, text
            count += 1
            if count >= limit:
                return

    # -- reading ---------------------------------------------------------------------------------------
    def read_text(self, rel: str, *, max_bytes: int = MAX_READ_BYTES) -> str | None:
        """The file as text, or None if it is missing, outside the repo, too big, or binary."""
        key = ("text", rel)
        if key in self._cache:
            return self._cache[key]
        text = None
        path = self._resolve(rel)
        if path is not None and path.is_file():
            try:
                if path.stat().st_size <= max_bytes:
                    text = _text_of(path.read_bytes())
            except OSError:
                text = None
        self._cache[key] = text
        return text

    def read_head(self, rel: str, max_bytes: int = 4096) -> str | None:
        """The first `max_bytes` of the file as text, whatever its size (a lockfile's version line); None as
        read_text."""
        path = self._resolve(rel)
        if path is None or not path.is_file():
            return None
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes)
        except OSError:
            return None
        return _text_of(data)

    # -- writing ---------------------------------------------------------------------------------------
    def write_text(self, rel: str, text: str, mode: int = 0o644) -> None:
        """Write a file under this tree without following any symlink: each folder on the way is opened from the
        repository root with O_NOFOLLOW (created when missing), and the file is written under a fresh name and
        renamed into place, so neither a symlink nor a hard link to a host file is ever written through.
        Raises OSError (ELOOP, ENOTDIR) when a symlink stands in the way."""
        parts = [p for p in PurePosixPath(self.app_path or ".", rel).parts if p != "."]
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"not a path inside the repository: {rel!r}")
        directory = os.open(self.repo_root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                try:
                    os.mkdir(part, 0o755, dir_fd=directory)
                except FileExistsError:
                    pass
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
                os.close(directory)
                directory = inner
            temporary = f".{parts[-1]}.portside-{os.getpid()}-{id(text):x}"
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=directory)
            try:
                os.fchmod(handle, mode)
                os.write(handle, text.encode())
            finally:
                os.close(handle)
            os.rename(temporary, parts[-1], src_dir_fd=directory, dst_dir_fd=directory)
        finally:
            os.close(directory)
        self._cache.clear()
        self._resolved.clear()

    def _parse(self, rel: str, kind: str, parse: Any) -> Any:
        key = (kind, rel)
        if key in self._cache:
            return self._cache[key]
        text = self.read_text(rel)
        value = None
        if text is not None:
            try:
                value = parse(text)
            except Exception as exc:  # noqa: BLE001 - any parser error is the user's broken file, not ours
                where = f"{self.app_path}/{rel}" if self.app_path else rel
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.warnings.append(f"{where}: invalid {kind.split()[0].upper()} ({first[:160]}); ignored")
                self.invalid.add(rel)
        self._cache[key] = value
        return value

    def read_json(self, rel: str) -> Any:
        return self._parse(rel, "json", json.loads)

    def read_toml(self, rel: str) -> dict[str, Any] | None:
        return self._parse(rel, "toml", tomllib.loads)

    def read_yaml(self, rel: str) -> Any:
        return self._parse(rel, "yaml", bounded_yaml)

    def read_yaml_all(self, rel: str) -> list[Any] | None:
        return self._parse(rel, "yaml stream", lambda t: list(yaml.safe_load_all(t)))


def _text_of(data: bytes) -> str | None:
    """Bytes read from a repository file as text; None for a binary file (NUL bytes in its first 8 KB)."""
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").lstrip("\ufeff")

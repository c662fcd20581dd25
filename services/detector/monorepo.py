"""Monorepos: the apps below a directory (workspaces, apps/*, services/*, backend + frontend), and which one
the top level describes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath

from services.detector import scoring
from services.detector.providers import common
from services.detector.providers.base import as_dict, note
from services.detector.providers.node.package_manager import workspace_globs
from shared.detection import Detection
from shared.source import SourceTree

_APP_DIRS = ("apps", "services", "packages", "examples")
_PAIR_DIRS = ("backend", "frontend", "api", "web", "server", "client", "app", "www", "site", "worker")
# When several apps are deployable, which one the top level describes: a server over a static site, then
# the conventional names of "the" app.
_PRIMARY_NAMES = ("web", "app", "www", "site", "frontend", "api", "server", "backend")


def _is_workspace_root(src: SourceTree) -> bool:
    return bool(workspace_globs(src)) or src.has_file("turbo.json") or src.has_file("nx.json")


def _expand(src: SourceTree, pattern: str) -> list[str]:
    pattern = pattern.strip().removeprefix("./").rstrip("/")
    if not pattern or pattern.startswith("!") or ".." in pattern:
        return []
    if pattern.endswith("/**"):
        pattern = pattern[:-3] + "/*"
    if "*" not in pattern:
        return [pattern] if src.has_dir(pattern) else []
    base, _, _rest = pattern.partition("*")
    base = base.rstrip("/")
    return [d for d in src.subdirs(base) if PurePosixPath(d).match(pattern)] if base else \
        [d for d in src.subdirs("") if PurePosixPath(d).match(pattern)]


def _candidate_dirs(src: SourceTree) -> list[str]:
    dirs: list[str] = []
    for pattern in workspace_globs(src):
        dirs += _expand(src, pattern)
    for parent in _APP_DIRS:
        if src.has_dir(parent) and (parent != "packages" or not dirs):
            dirs += src.subdirs(parent)
    dirs += [d for d in _PAIR_DIRS if src.has_dir(d)]
    return list(dict.fromkeys(dirs))[:50]


def _runnable(det: Detection) -> bool:
    return bool(det.framework or det.start_command or det.output_dir)


def find_apps(src: SourceTree, analyze_dir: Callable[[SourceTree], Detection]) -> list[Detection]:
    """Every deployable app below this directory (workspaces, apps/*, services/*, backend + frontend), each
    analysed by `analyze_dir` (service.py's, handed in: service.py imports this module)."""
    apps = []
    for rel in _candidate_dirs(src):
        sub = src.sub(rel)
        det = analyze_dir(sub)
        if det.stack in ("unknown",):
            continue
        if not (_runnable(det) or det.has_dockerfile):
            continue
        det.app_path = sub.app_path
        apps.append(det)
    return apps


def _primary_rank(det: Detection) -> tuple[int, int, int]:
    name = PurePosixPath(det.app_path).name
    server = 0 if det.start_command and det.output_dir is None else 1
    return (server, _PRIMARY_NAMES.index(name) if name in _PRIMARY_NAMES else len(_PRIMARY_NAMES),
            -det.confidence)


def _with_apps(src: SourceTree, root_det: Detection, apps: list[Detection]) -> Detection:
    root_has_app = root_det.stack not in ("unknown", "docker") and _runnable(root_det) and not (
        _is_workspace_root(src) and root_det.start_command and re.match(
            r"^(npm|yarn|pnpm|bun)( run)? start$", root_det.start_command) and _root_start_delegates(src))
    if root_has_app or len(apps) == 0:
        root_det.apps = apps
        return root_det
    primary = min(apps, key=_primary_rank)
    top = primary.model_copy(deep=True)
    top.apps = apps
    top.has_compose = top.has_compose or root_det.has_compose
    top.has_dockerfile = top.has_dockerfile or root_det.has_dockerfile
    for service in root_det.services:
        if service not in top.services:
            top.services.append(service)
    top.detected_db = common.pick_db(top.services) if top.detected_db == "none" else top.detected_db
    top.primary_app = primary.app_path
    why = ("it is the only deployable app" if len(apps) == 1 else
           "it runs a server (the others are static sites)" if _primary_rank(primary)[0] == 0 and any(
               _primary_rank(a)[0] == 1 for a in apps) else "its name marks the main app" if
           PurePosixPath(primary.app_path).name in _PRIMARY_NAMES else "it has the strongest evidence")
    note(top, primary.app_path, f"monorepo with {len(apps)} app(s): {primary.app_path} is primary because {why}")
    for alt in apps:
        if alt is not primary and alt.stack != top.stack and alt.stack not in top.alternatives:
            top.alternatives.append(alt.stack)
    top.confidence = scoring.score(top)
    return top


def _root_start_delegates(src: SourceTree) -> bool:
    """A workspace root whose `start` runs turbo/nx/lerna/a filtered workspace is not an app itself."""
    pkg = src.read_json("package.json") if src.has_file("package.json") else None
    start = str(as_dict(as_dict(pkg).get("scripts")).get("start", ""))
    return bool(re.search(r"\b(turbo|nx|lerna|--filter|-w |--workspace|concurrently)\b", start))

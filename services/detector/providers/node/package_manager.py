"""Which Node package manager installs the app, and which Node version runs it."""

from __future__ import annotations

import re
from typing import Any

from services.detector.providers.base import W_LOCKFILE, W_VERSION, note
from shared.detection import Detection
from shared.source import SourceTree

# Lockfile -> manager. Looked up from the app dir to the repo root, because a workspace has one lockfile at the
# top. When a dir holds several lockfiles (a migration left one behind), this order decides.
LOCKFILES = (
    ("bun.lock", "bun"), ("bun.lockb", "bun"), ("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"),
    ("package-lock.json", "npm"), ("npm-shrinkwrap.json", "npm"),
)
# Type packages only a Bun app depends on.
BUN_TYPES = ("bun-types", "@types/bun")
# Node release codenames used in .nvmrc (`lts/iron`).
_CODENAMES = {"argon": "4", "boron": "6", "carbon": "8", "dubnium": "10", "erbium": "12", "fermium": "14",
              "gallium": "16", "hydrogen": "18", "iron": "20", "jod": "22", "krypton": "24"}
LTS = "22"
# The pnpm major that accepts each pnpm-lock.yaml lockfileVersion with --frozen-lockfile: pnpm 8 and 9 refuse a
# 5.x lockfile (ERR_PNPM_LOCKFILE_BREAKING_CHANGE), pnpm 7 reads 5.3 and 5.4. pnpm 6 (which wrote 5.3) cannot
# fetch on Node 20+ (ERR_INVALID_THIS), so 7 is the oldest used. Newer or unreadable: the current line.
PNPM_FOR_LOCKFILE = ((5.4, "7"), (6.1, "8"))
PNPM_OLDEST, PNPM_CURRENT = 7, "9"


def workspace_globs(root: SourceTree, *, lerna: bool = True) -> list[str]:
    """The member globs of a workspace root: package.json `workspaces` (a list, or yarn 1's `{packages: [...]}`),
    pnpm-workspace.yaml `packages` and, with `lerna`, lerna.json `packages`; negations dropped, `./` and a trailing
    `/` removed. pnpm-workspace.yaml is read as YAML: its other lists (onlyBuiltDependencies) are not members.
    Lerna's list names apps to find, but a lerna-only repository installs each package in its own directory (no
    package manager installs them at the root), so the planner asks without it."""
    found: list[Any] = []
    pkg = root.read_json("package.json") if root.has_file("package.json") else None
    if isinstance(pkg, dict):
        workspaces = pkg.get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if isinstance(workspaces, list):
            found += workspaces
    manifests = (("pnpm-workspace.yaml", root.read_yaml),) + ((("lerna.json", root.read_json),) if lerna else ())
    for name, read in manifests:
        data = read(name) if root.has_file(name) else None
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            found += data["packages"]
    globs = (g.strip().removeprefix("./").rstrip("/") for g in found if isinstance(g, str))
    return list(dict.fromkeys(g for g in globs if g and not g.startswith("!")))


def detect_package_manager(src: SourceTree, pkg: dict[str, Any], det: Detection) -> str:
    """The `packageManager` field wins over lockfiles (it is what corepack enforces); npm when nothing says."""
    field = pkg.get("packageManager")
    if isinstance(field, str):
        m = re.match(r"^(npm|yarn|pnpm|bun)@", field.strip())
        if m:
            note(det, "package.json", f"packageManager is {field}", W_LOCKFILE)
            return m.group(1)
    depth_best: tuple[int, str, str] | None = None
    for lock, pm in LOCKFILES:
        found = src.find_up(lock)
        if found is None:
            continue
        depth = found[0].count("../")
        if depth_best is None or depth < depth_best[0]:
            depth_best = (depth, found[0], pm)
    if depth_best:
        _, path, pm = depth_best
        note(det, path, f"{path.rsplit('/', 1)[-1]} is the lockfile: {pm}", W_LOCKFILE)
        return pm
    engines = engines if isinstance(engines := pkg.get("engines"), dict) else {}
    for pm in ("pnpm", "yarn", "bun"):
        if pm in engines:
            note(det, "package.json", f"engines names {pm}")
            return pm
    dev = {**_deps(pkg.get("dependencies")), **_deps(pkg.get("devDependencies"))}
    types = next((t for t in BUN_TYPES if t in dev), None)
    if types:
        # `bun init` writes no lockfile until the first install, but its types mean the code calls Bun's APIs
        # (Bun.serve), which Node does not have.
        note(det, "package.json", f"depends on {types}: a Bun app", W_LOCKFILE)
        return "bun"
    return "npm"


def pnpm_major(src: SourceTree, pkg: dict[str, Any]) -> str:
    """The pnpm major to install: packageManager's (what corepack would run), else the one of the lockfile's
    lockfileVersion (looked up to the workspace root), else the current line."""
    m = re.match(r"^pnpm@(\d+)\.", str(pkg.get("packageManager") or "").strip())
    if m:
        return str(max(int(m.group(1)), PNPM_OLDEST))
    found = src.find_up("pnpm-lock.yaml")
    head = (found[1].read_head("pnpm-lock.yaml") or "") if found else ""
    version = re.search(r"^lockfileVersion:\s*['\"]?(\d+(?:\.\d+)?)", head, re.MULTILINE)
    if version is None:
        return PNPM_CURRENT
    number = float(version.group(1))
    return next((major for upto, major in PNPM_FOR_LOCKFILE if number <= upto), PNPM_CURRENT)


def _deps(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def yarn_berry(src: SourceTree, pkg: dict[str, Any]) -> bool:
    """Yarn 2+ (berry) rather than classic: `.yarnrc.yml`, a berry lockfile, or packageManager yarn@2+."""
    field = str(pkg.get("packageManager") or "")
    if re.match(r"^yarn@[2-9]", field):
        return True
    if src.find_up(".yarnrc.yml"):
        return True
    lock = src.find_up("yarn.lock")
    return bool(lock and "__metadata:" in (lock[1].read_head("yarn.lock") or ""))


def node_major(spec: str) -> str | None:
    spec = spec.strip().lower().removeprefix("v")
    if spec.startswith("lts/"):
        name = spec[4:]
        return _CODENAMES.get(name, LTS)
    if spec in ("node", "latest", "current", "stable", "lts"):
        return LTS
    m = re.search(r"(\d+)", spec)
    return m.group(1) if m else None


def detect_node_version(src: SourceTree, pkg: dict[str, Any], det: Detection) -> str | None:
    for name in (".nvmrc", ".node-version"):
        found = src.find_up(name)
        if found:
            text = (found[1].read_text(name) or "").strip().splitlines()
            v = node_major(text[0]) if text else None
            if v:
                note(det, found[0], f"{name} pins Node {text[0].strip()}", W_VERSION)
                return v
    found = src.find_up(".tool-versions")
    if found:
        m = re.search(r"^\s*(?:nodejs|node)\s+(\S+)", found[1].read_text(".tool-versions") or "", re.MULTILINE)
        if m and node_major(m.group(1)):
            note(det, found[0], f".tool-versions pins Node {m.group(1)}", W_VERSION)
            return node_major(m.group(1))
    volta = pkg.get("volta")
    if isinstance(volta, dict) and isinstance(volta.get("node"), str):
        note(det, "package.json", f"volta pins Node {volta['node']}", W_VERSION)
        return node_major(volta["node"])
    engines = pkg.get("engines")
    if isinstance(engines, dict) and isinstance(engines.get("node"), str):
        v = node_major(engines["node"])
        if v:
            note(det, "package.json", f"engines.node is {engines['node']}", W_VERSION)
            return v
    return None

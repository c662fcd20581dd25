"""The Node build plan: the package manager's lockfile-exact install, the production start (a `npm start` resolved to
its script), a static site's output, and a workspace member built from its workspace root."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

from services.detector.providers.base import Unplannable, as_dict
from shared.detection import Detection
from shared.plan import (
    DEFAULT_VERSIONS,
    SHELL_CHARS,
    BuildPlan,
    image_version,
    major_minor,
    serving_port,
    version_key,
)
from shared.source import SourceTree

NODE_LOCKFILES = {
    "npm": ["package-lock.json", "npm-shrinkwrap.json"],
    "yarn": ["yarn.lock"],
    "pnpm": ["pnpm-lock.yaml"],
    "bun": ["bun.lockb", "bun.lock"],
}
NO_START = 'No start command found; add a "start" script to package.json.'
# Static site generators whose output has a page per route; the others are single-page apps (nginx falls back to
# index.html).
_MULTI_PAGE = ("gatsby", "docusaurus", "astro")
SVELTEKIT_ADAPTER_NODE = "@sveltejs/adapter-node@5"


def node_install(pm: str, locked: bool, production_only: bool) -> str:
    """The lockfile-exact install for a package manager (a plain install without a lockfile)."""
    if pm == "yarn-berry":
        # Yarn 2+ through corepack, as pinned by package.json's packageManager field.
        return "corepack enable && yarn install --immutable" + (" && yarn workspaces focus --all --production"
                                                                if production_only else "")
    if pm == "yarn":
        # Yarn 1 gives up on a registry answer after 30 s, which a big install (Gatsby: 1,700 packages) on a busy
        # machine or a slow mirror exceeds ("There appears to be trouble with your network connection").
        return ("yarn install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
                + " --network-timeout 600000 && yarn cache clean")
    if pm == "pnpm":
        return "pnpm install" + (" --frozen-lockfile" if locked else "") + (" --prod" if production_only else "")
    if pm == "bun":
        return "bun install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
    base = "npm ci" if locked else "npm install"
    return base + (" --omit=dev" if production_only else "") + " --no-audit --no-fund"


def _package_json(src: SourceTree) -> dict[str, Any]:
    return as_dict(src.read_json("package.json")) if src.has_file("package.json") else {}


def _resolve_script(command: str, package: dict[str, Any]) -> str:
    """`npm start` -> the script itself (`node server.js`): node receives signals directly and no npm process
    stays around. Kept as it is when the script chains commands or runs other scripts."""
    words = command.split()
    scripts = as_dict(package.get("scripts"))
    name = None
    if words[:2] in (["npm", "start"], ["yarn", "start"], ["pnpm", "start"]) and len(words) == 2:
        name = "start"
    elif len(words) == 3 and words[0] in ("npm", "yarn", "pnpm") and words[1] == "run":
        name = words[2]
    elif len(words) == 2 and words[0] in ("yarn", "pnpm") and words[1] in scripts:
        name = words[1]
    script = scripts.get(name) if name else None
    if not isinstance(script, str) or not script.strip() or any(ch in script for ch in SHELL_CHARS + "=") \
            or re.search(r"\b(npm|yarn|pnpm|npx|nodemon|ts-node-dev)\b", script):
        return command
    return script.strip()


def _start(det: Detection, package: dict[str, Any], static: bool) -> str:
    if static:
        return ""
    if not det.start_command:
        raise Unplannable(det.start_command_help or NO_START)
    return _resolve_script(det.start_command, package)


def _workspace_of(src: SourceTree) -> tuple[SourceTree, str] | None:
    """The workspace root above the app (inside the repository) whose workspace globs include the app, and the
    app's path from it; None for an app that is not a workspace member."""
    parts = PurePosixPath(src.app_path).parts if src.app_path else ()
    for depth in range(1, len(parts) + 1):
        root = SourceTree(src.repo_root, "/".join(parts[:-depth]))
        rel = "/".join(parts[-depth:])
        globs: list[str] = []
        workspaces = _package_json(root).get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if isinstance(workspaces, list):
            globs += [g for g in workspaces if isinstance(g, str)]
        globs += re.findall(r"^\s*-\s*['\"]?([^'\"\n#]+?)['\"]?\s*$", root.read_text("pnpm-workspace.yaml") or "",
                            re.MULTILINE)
        if any(fnmatch.fnmatch(rel, g.rstrip("/").removeprefix("./")) for g in globs):
            return root, rel
    return None


def plan(det: Detection, src: SourceTree) -> BuildPlan:
    """Raises Unplannable (with the sentence that says what to add) when nothing would start."""
    workspace = _workspace_of(src)
    if workspace is not None:
        return _workspace_plan(det, src, *workspace)
    package = _package_json(src)
    pm = det.package_manager or "npm"
    if pm == "yarn" and ("__metadata:" in (src.read_text("yarn.lock") or "") or src.has_file(".yarnrc.yml")):
        pm = "yarn-berry"
    lockfiles = [f for f in NODE_LOCKFILES.get(pm.split("-")[0], []) if src.has_file(f)]
    manifests = ["package.json", *lockfiles]
    if pm == "yarn-berry":
        manifests += [f for f in (".yarnrc.yml",) if src.has_file(f)]
    if pm == "pnpm" and src.has_file("pnpm-workspace.yaml"):
        manifests.append("pnpm-workspace.yaml")
    locked = bool(lockfiles)
    notes = []
    if not locked:
        notes.append(
            f"No lockfile: dependencies resolve at build time. Commit the {pm} lockfile for repeatable builds."
        )
    major = major_minor(det.runtime_version, DEFAULT_VERSIONS["node"]).split(".")[0]
    node_spec = as_dict(package.get("engines")).get("node")
    spec: str = node_spec if isinstance(node_spec, str) else ""
    if spec.strip().startswith(">") and not any(c in spec for c in "<,|") and major == major_minor(spec, major) \
            and version_key(major) < version_key(DEFAULT_VERSIONS["node"]):
        # engines.node is only a lower bound ("node >= 18"): the default line satisfies it.
        major = DEFAULT_VERSIONS["node"]
    major = image_version("node", major, notes)
    static = det.output_dir is not None and not det.start_command
    start = _start(det, package, static)
    config = " ".join(src.read_text(n) or "" for n in ("next.config.js", "next.config.mjs", "next.config.ts"))
    standalone = det.framework == "next" and "standalone" in config
    build = det.build_command
    if det.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(src, package, pm, build, notes)
    return BuildPlan(
        "node", det.framework, pm, major, serving_port("node", det.internal_port, static), start, build, manifests,
        template="node/static.Dockerfile.j2" if static else "node/Dockerfile.j2",
        install=node_install(pm, locked, production_only=False),
        prod_install=node_install(pm, locked, production_only=True),
        output_dir=det.output_dir if static else None,
        spa=static and det.framework not in _MULTI_PAGE,
        artifact="standalone" if standalone else "",
        locked=locked,
        notes=notes,
    )


def _workspace_plan(det: Detection, src: SourceTree, root: SourceTree, rel: str) -> BuildPlan:
    """Install at the workspace root (its lockfile decides the package manager), build and run in the app's
    directory, so workspace packages (`"@acme/ui": "workspace:*"`) resolve like they do on a laptop."""
    lock = next(((pm, f) for pm, files in NODE_LOCKFILES.items() for f in files if root.has_file(f)), None)
    pm = lock[0] if lock else (det.package_manager or "npm")
    if pm == "yarn" and "__metadata:" in (root.read_text("yarn.lock") or ""):
        pm = "yarn-berry"
    notes = [(f"Workspace: dependencies install at the workspace root ({rel} is one of its members); the app "
              "builds and runs in its own directory.")]
    if lock is None:
        notes.append("No lockfile at the workspace root: dependencies resolve at build time.")
    package = _package_json(src)
    major = image_version("node", major_minor(det.runtime_version, DEFAULT_VERSIONS["node"]).split(".")[0], notes)
    static = det.output_dir is not None and not det.start_command
    start = _start(det, package, static)
    build = det.build_command
    if det.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(src, package, pm, build, notes)
    output = posixpath.normpath(posixpath.join(rel, det.output_dir)) if static and det.output_dir else None
    if output is not None and output.startswith(".."):
        raise Unplannable(f"The app's build writes to {det.output_dir}, outside the workspace; set its outDir "
                          "inside it.")
    return BuildPlan(
        "node", det.framework, pm, major, serving_port("node", det.internal_port, static), start, build, [],
        template="node/workspace.Dockerfile.j2",
        install=node_install(pm, lock is not None, production_only=False),
        output_dir=output, spa=static and det.framework not in _MULTI_PAGE,
        locked=lock is not None, notes=notes, workspace_root=posixpath.relpath(root.app_path or ".", src.app_path),
        workspace_app=rel,
    )


def _sveltekit_node_adapter(src: SourceTree, package: dict[str, Any], pm: str, build: str, notes: list[str]) -> str:
    """SvelteKit's adapter-auto only knows hosting platforms; in a container it writes no server. The build
    swaps in adapter-node (same `adapter()` call), whose `build/` is what `node build` runs."""
    config = src.first_file("svelte.config.js", "svelte.config.mjs", "svelte.config.ts")
    deps = {**as_dict(package.get("dependencies")), **as_dict(package.get("devDependencies"))}
    if config is None or "@sveltejs/adapter-auto" not in (src.read_text(config) or "") \
            or "@sveltejs/adapter-node" in deps:
        return build
    add = {"pnpm": "pnpm add --save-dev", "yarn": "yarn add --dev", "bun": "bun add --dev"}.get(
        pm, "npm install --no-save --no-audit --no-fund")
    notes.append("svelte.config uses adapter-auto, which writes no server in a container: the build uses "
                 "@sveltejs/adapter-node instead (add it to devDependencies and the config to make that explicit).")
    swap = f"sed -i 's#@sveltejs/adapter-auto#@sveltejs/adapter-node#' {config}"
    return f"{add} {SVELTEKIT_ADAPTER_NODE} && {swap} && {build}"

"""The Node build plan: the package manager's lockfile-exact install, the production start (a `npm start` resolved to
its script), a static site's output, and a workspace member built from its workspace root."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

from services.detector.providers.base import Unplannable, as_dict
from services.detector.providers.node.package_manager import pnpm_major, workspace_globs
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
UNLOCKED_NODE = "22"


def node_install(pm: str, locked: bool, production_only: bool, keep_cache: bool = False) -> str:
    """The lockfile-exact install for a package manager (a plain install without a lockfile). `keep_cache`: Yarn 1
    keeps its cache for the offline production install (node_prune) that follows."""
    if pm == "yarn-berry":
        # Yarn 2+ through corepack, as pinned by package.json's packageManager field.
        return "corepack enable && yarn install --immutable" + (" && yarn workspaces focus --all --production"
                                                                if production_only else "")
    if pm == "yarn":
        # Yarn 1 gives up on a registry answer after 30 s, which a big install (Gatsby: 1,700 packages) on a busy
        # machine or a slow mirror exceeds ("There appears to be trouble with your network connection").
        return ("yarn install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
                + " --network-timeout 600000" + ("" if keep_cache else " && yarn cache clean"))
    if pm == "pnpm":
        return "pnpm install" + (" --frozen-lockfile" if locked else "") + (" --prod" if production_only else "")
    if pm == "bun":
        return "bun install" + (" --frozen-lockfile" if locked else "") + (" --production" if production_only else "")
    base = "npm ci" if locked else "npm install"
    return base + (" --omit=dev" if production_only else "") + " --no-audit --no-fund"


def node_prune(pm: str, locked: bool) -> str:
    """From a full install to the production dependencies, offline: what the runtime image of an app with a build
    gets. A second install from the registry took as long as the first (react-scripts and Nuxt sit in
    `dependencies`), which pushed real apps past the build limit on a busy machine."""
    if pm == "npm":
        return "npm prune --omit=dev --no-audit --no-fund"
    if pm == "pnpm":
        return "pnpm prune --prod"
    if pm == "yarn":
        # Yarn 1 has no prune: an offline production install relinks from the cache the full install filled.
        return ("yarn install" + (" --frozen-lockfile" if locked else "")
                + " --production --offline && yarn cache clean")
    return node_install(pm, locked, production_only=True)


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


# `("RENDER" in process.env) ? '0.0.0.0' : 'localhost'`, `process.env.FLY_APP_NAME ? "0.0.0.0" : ...`: code that
# listens on every address only when some hosting platform's variable is set.
_HOST_SWITCH = re.compile(r"""(?:["'](\w+)["']\s+in\s+process\.env|process\.env\.(\w+)|process\.env\[["'](\w+)["']\])"""
                          r"""\s*\)?\s*\?\s*[`'"](?:0\.0\.0\.0|::)[`'"]""")
# Set in every generated image already (HOST, HOSTNAME, NODE_ENV=production, PORT).
_ALREADY_SET = {"HOST", "HOSTNAME", "NODE_ENV", "PORT"}


def _start(det: Detection, package: dict[str, Any], static: bool, src: SourceTree | None = None,
           notes: list[str] | None = None) -> str:
    if static:
        return ""
    if not det.start_command:
        raise Unplannable(det.start_command_help or NO_START)
    start = _resolve_script(det.start_command, package)
    words = start.split()
    if src is None or notes is None or len(words) < 2 or words[0] not in ("node", "bun"):
        return start
    match = _HOST_SWITCH.search(src.read_text(words[1]) or "")
    variable = next((g for g in match.groups() if g), "") if match else ""
    if not variable or variable in _ALREADY_SET:
        return start
    # Otherwise it listens on localhost inside its container, where nothing outside reaches it.
    notes.append(f"{words[1]} listens on 0.0.0.0 only when {variable} is set: the start command sets "
                 f"{variable}=true.")
    return f"env {variable}=true {start}"


def _workspace_of(src: SourceTree) -> tuple[SourceTree, str] | None:
    """The workspace root above the app (inside the repository) whose workspace globs include the app, and the
    app's path from it; None for an app that is not a workspace member."""
    parts = PurePosixPath(src.app_path).parts if src.app_path else ()
    for depth in range(1, len(parts) + 1):
        root = SourceTree(src.repo_root, "/".join(parts[:-depth]))
        rel = "/".join(parts[-depth:])
        if any(fnmatch.fnmatch(rel, g) for g in workspace_globs(root, lerna=False)):
            return root, rel
    return None


# A member's path as it may appear in a RUN line: plain path characters only (a repository names its folders).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9._@/-]+$")


def _workspace_builds(root: SourceTree, rel: str, pm: str, notes: list[str]) -> str | None:
    """Build the app's workspace dependencies that have a build script, dependencies first, each in its own
    directory: a package whose `main` is its `dist/` (tsc, tsup) is not there until it is built, and the app's
    own build (remix, vite without nx's task graph) does not build it ("Cannot find module .../dist/index.js")."""
    members: dict[str, tuple[str, dict[str, Any]]] = {}
    for pattern in workspace_globs(root, lerna=False):
        for manifest in root.glob(f"{pattern}/package.json", max_depth=pattern.count("/") + 2):
            package = as_dict(root.read_json(manifest))
            name = package.get("name")
            if isinstance(name, str):
                members[name] = (posixpath.dirname(manifest), package)
    order: list[str] = []
    seen: set[str] = set()

    def visit(package: dict[str, Any]) -> None:
        deps = {**as_dict(package.get("dependencies")), **as_dict(package.get("devDependencies"))}
        for dep in sorted(deps):
            if dep in members and dep not in seen:
                seen.add(dep)
                visit(members[dep][1])
                order.append(dep)

    visit(as_dict(root.read_json(f"{rel}/package.json")))
    # Each runs the package's script in the package's directory (no `cd`: hadolint DL3003).
    run = {"npm": "npm --prefix {} run build", "pnpm": "pnpm --dir {} run build",
           "bun": "bun --cwd {} run build"}.get(pm, "yarn --cwd {} run build")
    steps = []
    for dep in order:
        path, package = members[dep]
        if path == rel or not isinstance(as_dict(package.get("scripts")).get("build"), str):
            continue
        if not _SAFE_PATH.match(path):
            notes.append(f"The workspace package in {path[:80]!r} is not built first: its folder name has "
                         "characters Portside does not put in a build command.")
            continue
        steps.append(run.format(posixpath.relpath(path, rel)))
    if not steps:
        return None
    notes.append(f"Workspace packages the app depends on are built first: {', '.join(d for d in order)[:200]}.")
    return " && ".join(steps)


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
    if not locked and det.runtime_version is None:
        # Nothing pins the dependencies or Node: they resolve to today's releases, which target the newest LTS
        # (render's Nuxt example asks for nuxt@latest, whose build calls Set.prototype.difference: Node 22).
        major = UNLOCKED_NODE
        notes.append(f"No lockfile and no Node version: Node {UNLOCKED_NODE}, the LTS line today's releases "
                     "target. Pin one (.nvmrc or engines.node) to choose.")
    major = image_version("node", major, notes)
    static = det.output_dir is not None and not det.start_command
    start = _start(det, package, static, src, notes)
    config = " ".join(src.read_text(n) or "" for n in ("next.config.js", "next.config.mjs", "next.config.ts"))
    standalone = det.framework == "next" and "standalone" in config
    build = det.build_command
    if det.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(src, package, pm, build, notes)
    return BuildPlan(
        "node", det.framework, pm, major, serving_port("node", det.internal_port, static), start, build, manifests,
        template="node/static.Dockerfile.j2" if static else "node/Dockerfile.j2",
        install=node_install(pm, locked, production_only=False, keep_cache=bool(build and not static)),
        prod_install=node_prune(pm, locked) if build and not static else node_install(pm, locked, production_only=True),
        output_dir=det.output_dir if static else None,
        spa=static and det.framework not in _MULTI_PAGE,
        artifact="standalone" if standalone else "",
        locked=locked,
        notes=notes,
        build_tool=_tool(pm, src, package, notes),
    )


def _tool(pm: str, src: SourceTree, package: dict[str, Any], notes: list[str]) -> str:
    """The package manager the image installs from npm: pnpm of the lockfile's major, Bun 1; npm and yarn 1 are in
    the base image (yarn 2+ comes through corepack)."""
    if pm == "bun":
        return "bun@1"
    if pm != "pnpm":
        return ""
    major = pnpm_major(src, package)
    if major != "9":
        notes.append(f"pnpm {major}: the major that reads this pnpm-lock.yaml (a newer pnpm refuses it).")
    return f"pnpm@{major}"



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
    start = _start(det, package, static, src, notes)
    build = det.build_command
    if det.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(src, package, pm, build, notes)
    first = _workspace_builds(root, rel, pm, notes)
    if first:
        build = f"{first} && {build}" if build else first
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
        workspace_app=rel, build_tool=_tool(pm, root, _package_json(root), notes),
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

"""The build plan the templates render: the detection's own (`Detection.plan`, stated by the provider of its
language, shared/plan.py), with the user's port applied.

Stacks whose provider does not plan yet (all but Python, Go, static and Rust) are planned here, one planner per
stack (`_node`, `_php`, ...): each picks a template under templates/<stack>/, the official image tags pinned to the
detected runtime version, the manifests to copy before the source (so a source-only change reuses the dependency
layer), and the lockfile-exact install command. They move to their providers one language at a time."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import posixpath
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from shared.detection import Detection
from shared.errors import ErrorCode, PortsideError
from shared.plan import (
    DEFAULT_PORTS,
    DEFAULT_VERSIONS,
    IMAGE_VERSIONS,
    SHELL_CHARS,
    STATIC_PORT,
    BuildPlan,
    cmd_json,
    image_version,
    major_minor,
    version_key,
)
from shared.source import SourceTree

# Re-exported for the tests and templates that name them here.
__all__ = ["IMAGE_VERSIONS", "BuildPlan", "cmd_json", "image_version", "plan_for"]
# Stacks whose provider states the plan (Detection.plan); the builder has no planner of its own for them.
PROVIDER_PLANNED = ("python", "go", "static", "rust")

NODE_LOCKFILES = {
    "npm": ["package-lock.json", "npm-shrinkwrap.json"],
    "yarn": ["yarn.lock"],
    "pnpm": ["pnpm-lock.yaml"],
    "bun": ["bun.lockb", "bun.lock"],
}
def _read(app_dir: Path, name: str) -> str:
    # Through the contained layer: a manifest symlinked out of the app never feeds a generated file.
    return SourceTree(app_dir).read_text(name) or ""


def _package_json(app_dir: Path) -> dict:
    try:
        data = json.loads(_read(app_dir, "package.json") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def plan_for(detection: Detection, app_dir: Path, port_override: int | None = None) -> BuildPlan:
    """Raises UNSUPPORTED_STACK with a user-facing sentence when the stack cannot be built yet."""
    stack = detection.stack
    port = port_override or detection.internal_port or DEFAULT_PORTS.get(stack, 8080)
    start_command = detection.start_command or ""
    if port_override and detection.internal_port and port_override != detection.internal_port:
        # The detected command binds the detected port; the user asked for another one.
        start_command = re.sub(rf"(?<=[:= ]){detection.internal_port}\b", str(port_override), start_command)
    if detection.plan is not None:
        plan = detection.plan
        if port_override and plan.port is not None:
            plan = dataclasses.replace(plan, port=port_override,
                                       start_command=start_command if plan.start_command == detection.start_command
                                       else plan.start_command)
        return plan
    if stack in PROVIDER_PLANNED:
        raise PortsideError(ErrorCode.UNSUPPORTED_STACK, detection.start_command_help or (
            f"Portside found no way to build and start this {stack} app; add a Procfile with a `web:` line "
            "or your own Dockerfile."))
    detection = detection.model_copy(update={"start_command": start_command})
    planner = PLANNERS.get(stack)
    if planner is None:
        raise PortsideError(ErrorCode.UNSUPPORTED_STACK, 
            f"Portside cannot generate a Dockerfile for a '{stack}' app yet; add your own Dockerfile to the repository."
        )
    if detection.output_dir is not None and not detection.start_command:
        # A site built to files: served by nginx whatever the language of its build.
        port = port_override or STATIC_PORT
    return planner(detection, app_dir, port)


def _need_start(detection: Detection, default_help: str) -> str:
    if detection.start_command:
        return detection.start_command
    raise PortsideError(ErrorCode.UNSUPPORTED_STACK, detection.start_command_help or default_help)


# ---- Node.js -----------------------------------------------------------------------------------------------

def node_install(plan: BuildPlan, production_only: bool) -> str:
    """The lockfile-exact install for the plan's package manager (falls back to a plain install without one)."""
    return _node_install(plan.package_manager, len(plan.manifests) > 1, production_only)


def _node_install(pm: str, locked: bool, production_only: bool) -> str:
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


def node_prune(plan: BuildPlan) -> str:
    return {"yarn": "yarn install --production --ignore-scripts --prefer-offline", "pnpm": "pnpm prune --prod"}.get(
        plan.package_manager, "npm prune --omit=dev"
    )


def _resolve_script(command: str, package: dict) -> str:
    """`npm start` -> the script itself (`node server.js`): node receives signals directly and no npm process
    stays around. Kept as it is when the script chains commands or runs other scripts."""
    words = command.split()
    scripts = scripts if isinstance(scripts := package.get("scripts"), dict) else {}
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


def _workspace_of(d: Detection, app_dir: Path) -> tuple[Path, str] | None:
    """The workspace root above the app (inside the repository) whose workspace globs include the app, and the
    app's path from it; None for an app that is not a workspace member."""
    depth = len(PurePosixPath(d.app_path).parts) if d.app_path not in ("", ".") else 0
    here = app_dir
    for _ in range(depth):
        here = here.parent
        rel = app_dir.relative_to(here).as_posix()
        globs: list[str] = []
        workspaces = _package_json(here).get("workspaces")
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        if isinstance(workspaces, list):
            globs += [g for g in workspaces if isinstance(g, str)]
        globs += re.findall(r"^\s*-\s*['\"]?([^'\"\n#]+?)['\"]?\s*$", _read(here, "pnpm-workspace.yaml"), re.MULTILINE)
        if any(fnmatch.fnmatch(rel, g.rstrip("/").removeprefix("./")) for g in globs):
            return here, rel
    return None


def _workspace_node(d: Detection, app_dir: Path, port: int, root: Path, rel: str) -> BuildPlan:
    """Install at the workspace root (its lockfile decides the package manager), build and run in the app's
    directory, so workspace packages (`"@acme/ui": "workspace:*"`) resolve like they do on a laptop."""
    lock = next(((pm, f) for pm, files in NODE_LOCKFILES.items() for f in files if (root / f).is_file()), None)
    pm = lock[0] if lock else (d.package_manager or "npm")
    if pm == "yarn" and "__metadata:" in _read(root, "yarn.lock"):
        pm = "yarn-berry"
    member = app_dir.relative_to(root).as_posix()
    notes = [(f"Workspace: dependencies install at the workspace root ({member} is one of its members); the app "
              "builds and runs in its own directory.")]
    if lock is None:
        notes.append("No lockfile at the workspace root: dependencies resolve at build time.")
    package = _package_json(app_dir)
    major = image_version("node", major_minor(d.runtime_version, DEFAULT_VERSIONS["node"]).split(".")[0], notes)
    static = d.output_dir is not None and not d.start_command
    start = "" if static else _need_start(d, 'No start command found; add a "start" script to package.json.')
    if start:
        start = _resolve_script(start, package)
    build = d.build_command
    if d.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(app_dir, package, pm, build, notes)
    output = posixpath.normpath(posixpath.join(rel, d.output_dir)) if static and d.output_dir else None
    if output is not None and output.startswith(".."):
        raise PortsideError(ErrorCode.UNSUPPORTED_STACK, f"The app's build writes to {d.output_dir}, outside the "
                                                         "workspace; set its outDir inside it.")
    return BuildPlan(
        "node", d.framework, pm, major, port, start, build, [], template="node/workspace.Dockerfile.j2",
        install=_node_install(pm, lock is not None, production_only=False),
        output_dir=output, spa=static and d.framework not in ("gatsby", "docusaurus", "astro"),
        locked=lock is not None, notes=notes, workspace_root=posixpath.relpath(root.as_posix(), app_dir.as_posix()),
        workspace_app=rel,
    )


def _node(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    workspace = _workspace_of(d, app_dir)
    if workspace is not None:
        return _workspace_node(d, app_dir, port, *workspace)
    package = _package_json(app_dir)
    pm = d.package_manager or "npm"
    lock = _read(app_dir, "yarn.lock")
    if pm == "yarn" and ("__metadata:" in lock or (app_dir / ".yarnrc.yml").is_file()):
        pm = "yarn-berry"
    lockfiles = [f for f in NODE_LOCKFILES.get(pm.split("-")[0], []) if (app_dir / f).is_file()]
    manifests = ["package.json", *lockfiles]
    if pm == "yarn-berry":
        manifests += [f for f in (".yarnrc.yml",) if (app_dir / f).is_file()]
    if pm == "pnpm" and (app_dir / "pnpm-workspace.yaml").is_file():
        manifests.append("pnpm-workspace.yaml")
    locked = bool(lockfiles)
    notes = []
    if not locked:
        notes.append(
            f"No lockfile: dependencies resolve at build time. Commit the {pm} lockfile for repeatable builds."
        )
    major = major_minor(d.runtime_version, DEFAULT_VERSIONS["node"]).split(".")[0]
    engines_field = package.get("engines")
    engines: dict = engines_field if isinstance(engines_field, dict) else {}
    node_spec = engines.get("node")
    spec: str = node_spec if isinstance(node_spec, str) else ""
    if spec.strip().startswith(">") and not any(c in spec for c in "<,|") and major == major_minor(spec, major) \
            and version_key(major) < version_key(DEFAULT_VERSIONS["node"]):
        # engines.node is only a lower bound ("node >= 18"): the default line satisfies it.
        major = DEFAULT_VERSIONS["node"]
    major = image_version("node", major, notes)
    static = d.output_dir is not None and not d.start_command
    start = "" if static else _need_start(d, 'No start command found; add a "start" script to package.json.')
    if start:
        start = _resolve_script(start, package)
    config = " ".join(_read(app_dir, n) for n in ("next.config.js", "next.config.mjs", "next.config.ts"))
    standalone = d.framework == "next" and "standalone" in config
    build = d.build_command
    if d.framework == "sveltekit" and build and not static:
        build = _sveltekit_node_adapter(app_dir, package, pm, build, notes)
    template = "node/static.Dockerfile.j2" if static else "node/Dockerfile.j2"
    return BuildPlan(
        "node",
        d.framework,
        pm,
        major,
        port,
        start,
        build,
        manifests,
        template=template,
        install=_node_install(pm, locked, production_only=False),
        prod_install=_node_install(pm, locked, production_only=True),
        output_dir=d.output_dir if static else None,
        spa=static and d.framework not in ("gatsby", "docusaurus", "astro"),
        artifact="standalone" if standalone else "",
        locked=locked,
        notes=notes,
    )


SVELTEKIT_ADAPTER_NODE = "@sveltejs/adapter-node@5"


def _sveltekit_node_adapter(app_dir: Path, package: dict, pm: str, build: str, notes: list[str]) -> str:
    """SvelteKit's adapter-auto only knows hosting platforms; in a container it writes no server. The build
    swaps in adapter-node (same `adapter()` call), whose `build/` is what `node build` runs."""
    names = ("svelte.config.js", "svelte.config.mjs", "svelte.config.ts")
    config = next((n for n in names if (app_dir / n).is_file()), None)
    deps = {**(package.get("dependencies") or {}), **(package.get("devDependencies") or {})}
    if config is None or "@sveltejs/adapter-auto" not in _read(app_dir, config) or "@sveltejs/adapter-node" in deps:
        return build
    add = {"pnpm": "pnpm add --save-dev", "yarn": "yarn add --dev", "bun": "bun add --dev"}.get(
        pm, "npm install --no-save --no-audit --no-fund")
    notes.append("svelte.config uses adapter-auto, which writes no server in a container: the build uses "
                 "@sveltejs/adapter-node instead (add it to devDependencies and the config to make that explicit).")
    swap = f"sed -i 's#@sveltejs/adapter-auto#@sveltejs/adapter-node#' {config}"
    return f"{add} {SVELTEKIT_ADAPTER_NODE} && {swap} && {build}"


# ---- Java --------------------------------------------------------------------------------------------------

def _java(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    version = major_minor(d.runtime_version, DEFAULT_VERSIONS["java"]).split(".")[0]
    start = d.start_command or ""
    jar = next((w for w in start.split() if w.endswith(".jar")), "")
    pm = d.package_manager or ("gradle" if any((app_dir / f).is_file() for f in ("build.gradle", "build.gradle.kts"))
                               else "maven")
    if not jar:
        jar = "target/*.jar" if pm == "maven" else "build/libs/*.jar"
    build_words = (d.build_command or "").split()
    if pm == "gradle":
        tasks = [w for w in build_words[1:] if not w.startswith("-")] or ["build"]
        manifests = [f for f in ("settings.gradle", "settings.gradle.kts", "build.gradle", "build.gradle.kts",
                                 "gradle.properties") if (app_dir / f).is_file()]
        build = "gradle --no-daemon -x test " + " ".join(tasks)
    else:
        manifests = ["pom.xml"]
        build = "mvn -B -DskipTests package"
    # Quarkus' fast-jar is a directory, not one jar: the whole directory goes to the runtime image.
    artifact_dir = jar.rsplit("/", 1)[0] if "quarkus-app" in jar else ""
    return BuildPlan("java", d.framework, pm, version, port, "", build, manifests, template="java/Dockerfile.j2",
                     artifact=jar, target=artifact_dir)


# ---- .NET --------------------------------------------------------------------------------------------------

def _dotnet(d: Detection, app_dir: Path, port: int | None) -> BuildPlan:
    version = major_minor(d.runtime_version, DEFAULT_VERSIONS["dotnet"])
    words = (d.build_command or "").split()
    project = next((w for w in words if w.endswith(".csproj")), "")
    if not project:
        found = sorted(
            p.relative_to(app_dir).as_posix() for p in app_dir.rglob("*.csproj") if "test" not in p.name.lower()
        )
        if not found:
            raise PortsideError(ErrorCode.UNSUPPORTED_STACK,
                                "No .csproj found; Portside builds the project that `dotnet publish` would.")
        project = found[0]
    # Every project file, so `dotnet restore` of the app's project sees its project references.
    manifests = sorted(p.relative_to(app_dir).as_posix() for p in app_dir.rglob("*.csproj"))
    manifests += [f for f in ("global.json", "nuget.config", "NuGet.Config", "Directory.Build.props",
                              "Directory.Packages.props") if (app_dir / f).is_file()]
    dll = next((w for w in (d.start_command or "").split() if w.endswith(".dll")), "")
    dll = dll.rsplit("/", 1)[-1] or Path(project).stem + ".dll"
    web = d.framework == "aspnetcore" or d.internal_port is not None
    return BuildPlan("dotnet", d.framework, "dotnet", version, port if web else None, "", d.build_command, manifests,
                     template="dotnet/Dockerfile.j2", artifact=dll, target=project)


# ---- PHP ---------------------------------------------------------------------------------------------------

def _php(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    notes: list[str] = []
    version = image_version("php", major_minor(d.runtime_version, DEFAULT_VERSIONS["php"]), notes)
    composer = (app_dir / "composer.json").is_file()
    locked = (app_dir / "composer.lock").is_file()
    manifests = ["composer.json", *(["composer.lock"] if locked else [])] if composer else []
    start = d.start_command or f"php -S 0.0.0.0:{port} -t ."
    match = re.search(r"-t\s+(\S+)", start)
    docroot = match[1] if match else ("public" if (app_dir / "public").is_dir() else ".")
    assets = bool(d.build_command) and (app_dir / "package.json").is_file()
    node_locks = [f for f in NODE_LOCKFILES["npm"] if (app_dir / f).is_file()]
    notes.append("PHP's built-in server with PHP_CLI_SERVER_WORKERS workers; "
                 "for heavy traffic put php-fpm behind nginx.")
    return BuildPlan(
        "php", d.framework, "composer" if composer else "none", version, port,
        f"php -S 0.0.0.0:{port} -t {docroot}", d.build_command if assets else None, manifests,
        template="php/Dockerfile.j2", target=docroot, locked=locked,
        install=_node_install("npm", bool(node_locks), production_only=False) if assets else "",
        artifact=" ".join(["package.json", *node_locks]) if assets else "", notes=notes,
    )


# ---- Ruby --------------------------------------------------------------------------------------------------

def _ruby(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    version = major_minor(d.runtime_version, DEFAULT_VERSIONS["ruby"])
    locked = (app_dir / "Gemfile.lock").is_file()
    manifests = ["Gemfile", *(["Gemfile.lock"] if locked else [])]
    gemfile = _read(app_dir, "Gemfile")
    build_pkgs, run_pkgs = ["build-essential", "libyaml-dev"], []
    if re.search(r"gem ['\"]pg['\"]", gemfile):
        build_pkgs.append("libpq-dev")
        run_pkgs.append("libpq5")
    if re.search(r"gem ['\"](mysql2|trilogy)['\"]", gemfile):
        build_pkgs.append("default-libmysqlclient-dev")
        run_pkgs.append("libmariadb3")
    if re.search(r"gem ['\"]sqlite3['\"]", gemfile):
        run_pkgs.append("libsqlite3-0")
    static = d.output_dir is not None and not d.start_command
    start = "" if static else _need_start(d, "No start command found; add a Procfile with a `web:` line.")
    return BuildPlan(
        "ruby", d.framework, "bundler", version, port, start, d.build_command, manifests,
        template="ruby/static.Dockerfile.j2" if static else "ruby/Dockerfile.j2", locked=locked,
        output_dir=d.output_dir if static else None, build_packages=build_pkgs, runtime_packages=run_pkgs,
    )


# ---- Elixir ------------------------------------------------------------------------------------------------

def _elixir(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    version = major_minor(d.runtime_version, DEFAULT_VERSIONS["elixir"])
    match = re.search(r"app:\s*:(\w+)", _read(app_dir, "mix.exs"))
    if not match:
        raise PortsideError(ErrorCode.UNSUPPORTED_STACK,
                            "mix.exs names no `app:`; Portside builds a release named after it.")
    manifests = ["mix.exs", *(["mix.lock"] if (app_dir / "mix.lock").is_file() else [])]
    return BuildPlan("elixir", d.framework, "mix", version, port, f"/app/bin/{match[1]} start", d.build_command,
                     manifests, template="elixir/Dockerfile.j2", artifact=match[1])


# ---- Deno --------------------------------------------------------------------------------------------------

def _deno(d: Detection, app_dir: Path, port: int) -> BuildPlan:
    start = _need_start(d, 'No start command found; add a "start" task to deno.json.')
    manifests = [f for f in ("deno.json", "deno.jsonc", "deno.lock", "import_map.json") if (app_dir / f).is_file()]
    entry = next((w for w in reversed(start.split()) if w.endswith((".ts", ".js", ".tsx", ".mjs"))), "")
    if not entry:
        entry = next((f for f in ("main.ts", "mod.ts", "server.ts", "main.js") if (app_dir / f).is_file()), "main.ts")
    return BuildPlan("deno", d.framework, "deno", d.runtime_version or DEFAULT_VERSIONS["deno"], port, start,
                     d.build_command, manifests, template="deno/Dockerfile.j2", artifact=entry)


PLANNERS: dict[str, Callable[[Detection, Path, int], BuildPlan]] = {
    "node": _node, "java": _java,
    "dotnet": _dotnet, "php": _php, "ruby": _ruby, "elixir": _elixir, "deno": _deno,
}

"""The build plan the templates render: the detection's own (`Detection.plan`, stated by the provider of its
language, shared/plan.py), with the user's port applied.

Stacks whose provider does not plan yet (PHP, Ruby, Java, .NET, Elixir, Deno) are planned here, one planner per
stack (`_php`, `_ruby`, ...): each picks a template under templates/<stack>/, the official image tags pinned to the
detected runtime version, the manifests to copy before the source (so a source-only change reuses the dependency
layer), and the lockfile-exact install command. They move to their providers one language at a time."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

from shared.detection import Detection
from shared.errors import ErrorCode, PortsideError
from shared.plan import (
    DEFAULT_PORTS,
    DEFAULT_VERSIONS,
    IMAGE_VERSIONS,
    STATIC_PORT,
    BuildPlan,
    cmd_json,
    image_version,
    major_minor,
)
from shared.source import SourceTree

# Re-exported for the tests and templates that name them here.
__all__ = ["IMAGE_VERSIONS", "BuildPlan", "cmd_json", "image_version", "plan_for"]
# Stacks whose provider states the plan (Detection.plan); the builder has no planner of its own for them.
PROVIDER_PLANNED = ("python", "go", "static", "rust", "node")

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


# ---- npm assets (PHP) --------------------------------------------------------------------------------------

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
    "java": _java,
    "dotnet": _dotnet, "php": _php, "ruby": _ruby, "elixir": _elixir, "deno": _deno,
}

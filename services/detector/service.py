"""Detection: which runtime builds and runs an app directory, and how, with the evidence for each decision.

`detect(root, app_path)` is pure: it reads files only through a SourceTree and never runs anything.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath

from services.detector import scoring
from services.detector.providers import common
from services.detector.providers.base import Provider, as_dict, note, port_from_command
from services.detector.providers.deno import DenoProvider
from services.detector.providers.dotnet import DotnetProvider
from services.detector.providers.elixir import ElixirProvider
from services.detector.providers.go import GoProvider
from services.detector.providers.java import JavaProvider
from services.detector.providers.node import NodeProvider
from services.detector.providers.other import OtherLanguageProvider
from services.detector.providers.php import PhpProvider
from services.detector.providers.python import PythonProvider
from services.detector.providers.ruby import RubyProvider
from services.detector.providers.rust import RustProvider
from services.detector.providers.static import StaticProvider
from shared.detection import Detection
from shared.source import SourceTree

log = logging.getLogger(__name__)

# The registration order is the tie-break policy when several runtimes claim one directory.
# 1. Languages whose apps routinely carry a package.json only for front-end assets (Laravel + Vite, Rails +
#    jsbundling, Phoenix assets, Django/Flask + Tailwind, Spring/ASP.NET/Go servers with a web client) come
#    before Node. Each needs its own manifest, which a Node project never has by accident.
# 2. Deno before Node: a deno.json is deliberate, a package.json in a Deno repo is there for npm compatibility.
# 3. Node, then static HTML (index.html only counts when no runtime claims the directory: a Vite app has one).
# 4. Other languages last: named from a manifest or the dominant file extension, so nothing is "unknown"
#    when it has source code.
# On top of order, a later runtime wins only when the earlier one found nothing runnable (see `_choose`),
# which is how a Node app with a docs-only requirements.txt stays Node.
PROVIDERS: tuple[Provider, ...] = (
    PhpProvider(),
    RubyProvider(),
    ElixirProvider(),
    PythonProvider(),
    JavaProvider(),
    DotnetProvider(),
    GoProvider(),
    RustProvider(),
    DenoProvider(),
    NodeProvider(),
    StaticProvider(),
    OtherLanguageProvider(),
)


def detect(root: Path | str, app_path: str = "") -> Detection:
    """Detect the app at `root/app_path`; monorepos list their apps in `apps` and describe the primary one."""
    src = SourceTree(root, app_path)
    det = analyze_dir(src)
    # Look for apps below only when this directory is a workspace root or is not an app itself: a Flask app's
    # `app/` package or an Express app's `server/` folder are parts of the app, not more apps.
    if _is_workspace_root(src) or not _runnable(det) or det.stack in ("unknown", "docker"):
        apps = find_apps(src)
        if apps:
            det = _with_apps(src, det, apps)
    det.app_path = src.app_path
    det.warnings = list(dict.fromkeys(src.warnings))
    return det


def _run(provider: Provider, src: SourceTree) -> Detection | None:
    try:
        if not provider.detect(src):
            return None
        return provider.analyze(src)
    except Exception as exc:  # a provider bug must not take detection down; the others still answer
        log.exception("provider %s failed on %s", provider.name, src.root)
        src.warnings.append(f"the {provider.name} provider failed ({type(exc).__name__}: {exc}); skipped")
        return None


def _runnable(det: Detection) -> bool:
    return bool(det.framework or det.start_command or det.output_dir)


def _choose(results: list[Detection]) -> tuple[Detection, list[Detection]]:
    """First match in provider order, unless it found nothing runnable and a later one did."""
    primary = next((d for d in results if _runnable(d)), results[0])
    return primary, [d for d in results if d is not primary]


def analyze_dir(src: SourceTree) -> Detection:
    results: list[Detection] = []
    for provider in PROVIDERS:
        # A fallback (naming a language by its files) only speaks when no real provider claimed the directory.
        if getattr(provider, "fallback", False) and results:
            break
        found = _run(provider, src)
        if found is not None and all(found.stack != r.stack for r in results):
            results.append(found)
    facts = common.docker_facts(src)
    if results:
        det, others = _choose(results)
        if det is not results[0]:
            note(det, ".", f"{results[0].stack} files are present too, but only {det.stack} has a runnable app")
        for other in others:
            det.alternatives.append(other.stack)
            # Another runtime that would start a server is a real ambiguity; an asset pipeline (a package.json
            # that only builds CSS/JS next to Rails or Laravel) is not.
            strong = other.start_command is not None
            note(det, other.evidence[0].file if other.evidence else ".",
                 f"{other.stack} also matches{' with a runnable app' if strong else ''}",
                 scoring.W_AMBIGUOUS if strong else scoring.W_AMBIGUOUS // 3)
    elif (procfile_stack := _stack_from_procfile(src)) is not None:
        det = Detection(stack=procfile_stack)
        note(det, "Procfile", f"only a Procfile: its web process runs {procfile_stack}", 30)
    elif facts.dockerfile or facts.compose:
        det = Detection(stack="docker", internal_port=facts.compose_port)
        note(det, facts.dockerfile or facts.compose or ".",
             "no app source of its own: the Dockerfile/compose file defines the app", 60)
    else:
        det = Detection(stack="unknown")
        det.start_command_help = ("No runtime detected: add a manifest (package.json, requirements.txt, go.mod, ...) "
                                  "or a Dockerfile at the app root.")
    common.apply_docker(det, facts)
    _apply_procfile(src, det)
    if facts.expose and det.output_dir is None:
        _apply_expose(det, facts)
    common.scan_env_examples(src, det)
    common.apply_readme(det, src)
    det.detected_db = common.pick_db(det.services)
    det.services = sorted(det.services, key=lambda s: common.DB_PRIORITY.index(s)
                          if s in common.DB_PRIORITY else 99)
    if det.start_command:
        det.start_command_help = None
    elif det.stack not in ("unknown", "docker") and det.output_dir is None:
        note(det, ".", "no start command found", scoring.W_NO_START)
    for bad in sorted(src.invalid):
        note(det, bad, f"{bad} could not be parsed", scoring.W_INVALID_MANIFEST)
    det.confidence = scoring.score(det)
    return det


_PROCFILE_STACKS = (
    (r"^(?:gunicorn|uvicorn|python3?|hypercorn|daphne|waitress-serve|streamlit|flask)\b", "python"),
    (r"^(?:node|npm|yarn|pnpm|npx)\b", "node"), (r"^bun\b", "node"), (r"^deno\b", "deno"),
    (r"^(?:bundle|rails|puma|rackup|ruby|unicorn)\b", "ruby"), (r"^(?:php|heroku-php-\w+|vendor/bin)\b", "php"),
    (r"^java\b", "java"), (r"^dotnet\b", "dotnet"), (r"^(?:mix|elixir)\b", "elixir"),
)


def _stack_from_procfile(src: SourceTree) -> str | None:
    web = common.procfile(src).get("web", "")
    for pattern, stack in _PROCFILE_STACKS:
        if re.match(pattern, web.strip()):
            return stack
    return None


def _apply_procfile(src: SourceTree, det: Detection) -> None:
    procs = common.procfile(src)
    web = procs.get("web")
    if not web:
        return
    if det.stack == "docker":
        return
    det.start_command = web
    note(det, "Procfile", f"the Procfile's web process: `{web}`", 10)
    port = port_from_command(web)
    config = None if port else _gunicorn_config(src, web)
    if config:
        # `gunicorn -c gunicorn_config.py app:app`: the port is the config file's `bind`.
        match = re.search(r"^bind\s*=\s*\[?\s*['\"][^'\"]*:(\d{2,5})['\"]", src.read_text(config) or "", re.MULTILINE)
        port = int(match[1]) if match else None
    if port:
        det.internal_port = port
        note(det, config or "Procfile", f"the web process binds port {port}")
    elif "$PORT" in web or "${PORT" in web:
        note(det, "Procfile", f"the web process binds $PORT (set to {det.internal_port})")


def _gunicorn_config(src: SourceTree, command: str) -> str | None:
    """The config file a gunicorn command reads: `-c FILE` / `--config FILE`, else gunicorn.conf.py if present."""
    words = command.split()
    if not words or words[0] != "gunicorn":
        return None
    for i, word in enumerate(words):
        if word in ("-c", "--config") and i + 1 < len(words):
            name = words[i + 1].removeprefix("python:")
            return name if src.has_file(name) else None
        if word.startswith("--config="):
            name = word.split("=", 1)[1]
            return name if src.has_file(name) else None
    return "gunicorn.conf.py" if src.has_file("gunicorn.conf.py") else None


def _apply_expose(det: Detection, facts: common.DockerFacts) -> None:
    old = det.internal_port
    if old == facts.expose:
        note(det, facts.dockerfile or "Dockerfile", f"the Dockerfile exposes {facts.expose} too")
        return
    det.internal_port = facts.expose
    note(det, facts.dockerfile or "Dockerfile", f"the Dockerfile exposes port {facts.expose}", 5)
    if old and det.start_command:
        det.start_command = re.sub(rf"(?<=[:= ]){old}\b", str(facts.expose), det.start_command)


# -- monorepos ---------------------------------------------------------------------------------------------
_APP_DIRS = ("apps", "services", "packages", "examples")
_PAIR_DIRS = ("backend", "frontend", "api", "web", "server", "client", "app", "www", "site", "worker")
# When several apps are deployable, which one the top level describes: a server over a static site, then
# the conventional names of "the" app.
_PRIMARY_NAMES = ("web", "app", "www", "site", "frontend", "api", "server", "backend")


def _workspace_globs(src: SourceTree) -> list[str]:
    globs: list[str] = []
    pkg = src.read_json("package.json") if src.has_file("package.json") else None
    if isinstance(pkg, dict):
        ws = pkg.get("workspaces")
        if isinstance(ws, dict):
            ws = ws.get("packages")
        if isinstance(ws, list):
            globs += [str(w) for w in ws]
    if src.has_file("pnpm-workspace.yaml"):
        data = src.read_yaml("pnpm-workspace.yaml")
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            globs += [str(w) for w in data["packages"]]
    if src.has_file("lerna.json"):
        data = src.read_json("lerna.json")
        if isinstance(data, dict) and isinstance(data.get("packages"), list):
            globs += [str(w) for w in data["packages"]]
    return globs


def _is_workspace_root(src: SourceTree) -> bool:
    return bool(_workspace_globs(src)) or src.has_file("turbo.json") or src.has_file("nx.json")


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
    for pattern in _workspace_globs(src):
        dirs += _expand(src, pattern)
    for parent in _APP_DIRS:
        if src.has_dir(parent) and (parent != "packages" or not dirs):
            dirs += src.subdirs(parent)
    dirs += [d for d in _PAIR_DIRS if src.has_dir(d)]
    return list(dict.fromkeys(dirs))[:50]


def find_apps(src: SourceTree) -> list[Detection]:
    """Every deployable app below this directory (workspaces, apps/*, services/*, backend + frontend)."""
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

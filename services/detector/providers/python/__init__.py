"""Python: requirements files, pyproject (PEP 621, poetry, pdm, uv), Pipfile, setup.py; WSGI/ASGI frameworks."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_MANIFEST,
    as_dict,
    note,
    valid_port,
)
from services.detector.providers.common import add_service, services_from_text
from services.detector.providers.python import plan as python_plan
from services.detector.providers.python.frameworks import (
    DEFAULT_PORT,
    FRAMEWORKS,
    SERVERS,
    Server,
    _gunicorn,
    _uvicorn,
)
from services.detector.providers.python.package_manager import (
    REQUIREMENTS,
    PyProject,
    package_manager,
    read_project,
    runtime_version,
)
from shared.detection import Detection
from shared.plan import BuildPlan
from shared.source import SourceTree

MANIFESTS = ("pyproject.toml", "Pipfile", "setup.py", "setup.cfg", "environment.yml", *REQUIREMENTS)
# Files that only a Python app has at its root, even without a manifest.
ENTRY_HINTS = ("manage.py", "app.py", "main.py", "wsgi.py", "asgi.py", "streamlit_app.py", "application.py")

# Dependency -> backing service.
DEP_SERVICES = {
    "psycopg": "postgres", "psycopg2": "postgres", "psycopg2-binary": "postgres", "psycopg-binary": "postgres",
    "asyncpg": "postgres", "pg8000": "postgres", "aiopg": "postgres", "psycopg-pool": "postgres",
    "mysqlclient": "mysql", "pymysql": "mysql", "aiomysql": "mysql", "mysql-connector-python": "mysql",
    "asyncmy": "mysql", "pymongo": "mongodb", "motor": "mongodb", "mongoengine": "mongodb", "beanie": "mongodb",
    "odmantic": "mongodb", "flask-pymongo": "mongodb", "djongo": "mongodb", "redis": "redis", "aioredis": "redis",
    "django-redis": "redis", "rq": "redis", "hiredis": "redis", "redis-om": "redis", "flask-redis": "redis",
    "channels-redis": "redis", "arq": "redis", "pika": "rabbitmq", "aio-pika": "rabbitmq", "aiosqlite": "sqlite",
}
_SKIP_PARTS = {"tests", "test", "testing", "docs", "doc", "migrations", "alembic", "scripts", "examples",
               "example", "node_modules", "static", "templates", "fixtures", "benchmarks", "tools"}


# -- finding the app object --------------------------------------------------------------------------------
_PREFERRED = ("wsgi.py", "asgi.py", "app.py", "main.py", "application.py", "server.py", "api.py", "run.py",
              "__init__.py", "web.py", "index.py", "manage.py")


def python_files(src: SourceTree, max_depth: int = 1, limit: int = 300) -> list[str]:
    """Python source likely to hold the app: shallow and conventionally named first, tests and migrations out.

    Callers ask for depth 1 first and go deeper only when nothing was found, so a huge tree is walked only
    as deep as the app needs.
    """
    files = []
    for f in src.glob("*.py", max_depth=max_depth + (1 if src.has_dir("src") else 0)):
        parts = f.split("/")
        if parts[-1].startswith("test_") or any(p in _SKIP_PARTS for p in parts[:-1]):
            continue
        files.append(f)

    def rank(f: str) -> tuple[int, int, str]:
        name = f.rsplit("/", 1)[-1]
        return (f.count("/") - (1 if f.startswith("src/") else 0),
                _PREFERRED.index(name) if name in _PREFERRED else len(_PREFERRED), f)

    return heapq.nsmallest(limit, files, key=rank)


def find_app(src: SourceTree, ctor: str, factory: bool = False, limit: int = 300) -> AppObject | None:
    """The app object in shallow files, then (only if none) up to three folders deep."""
    found = find_app_object(src, python_files(src, 1, limit), ctor, factory)
    return found or find_app_object(src, python_files(src, 3, limit), ctor, factory)


def module_of(path: str) -> tuple[str, str | None]:
    """(module, chdir) for a Python file: 'src/pkg/app.py' -> ('pkg.app', 'src')."""
    parts = list(PurePosixPath(path).with_suffix("").parts)
    chdir = None
    if parts[0] == "src" and len(parts) > 1:
        chdir, parts = "src", parts[1:]
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts), chdir


@dataclass
class AppObject:
    file: str
    module: str
    target: str  # "module:app" or "module:create_app()"
    chdir: str | None
    factory: bool


def find_app_object(src: SourceTree, files: list[str], ctor: str, factory: bool = False) -> AppObject | None:
    """The first `var = Ctor(` in conventional files; with `factory`, `var = create_app(` or `def create_app(`."""
    assign = re.compile(rf"^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:\w+\.)?(?:{ctor})\(", re.MULTILINE)
    factory_def = re.compile(r"^def (create_app|make_app|get_app|app_factory)\s*\(", re.MULTILINE)
    found_factory: AppObject | None = None
    for f in files:
        text = src.read_text(f) or ""
        mod, chdir = module_of(f)
        m = assign.search(text)
        if m and PurePosixPath(f).name != "manage.py":
            return AppObject(f, mod, f"{mod}:{m.group(1)}", chdir, False)
        if factory and found_factory is None:
            m = factory_def.search(text)
            if m:
                found_factory = AppObject(f, mod, f"{mod}:{m.group(1)}()", chdir, True)
    return found_factory


_FASTHTML_APP = re.compile(r"^(\w+)\s*(?:,\s*\w+\s*)*=\s*(?:fast_app|FastHTML)\(", re.MULTILINE)


def _fasthtml_app(src: SourceTree, files: list[str]) -> AppObject | None:
    for f in files:
        m = _FASTHTML_APP.search(src.read_text(f) or "")
        if m:
            mod, chdir = module_of(f)
            return AppObject(f, mod, f"{mod}:{m.group(1)}", chdir, False)
    return None


_CODE_PORT = (
    re.compile(r"\bport\s*=\s*int\(\s*os\.(?:environ\.get|getenv)\(\s*['\"]PORT['\"]\s*,\s*['\"]?(\d{2,5})"),
    re.compile(r"\bos\.(?:environ\.get|getenv)\(\s*['\"]PORT['\"]\s*,\s*['\"]?(\d{2,5})"),
    re.compile(r"\.run\([^)]*\bport\s*=\s*(\d{2,5})"),
    re.compile(r"\buvicorn\.run\([^)]*\bport\s*=\s*(\d{2,5})"),
    re.compile(r"^PORT\s*=\s*(\d{2,5})\s*$", re.MULTILINE),
)


def port_in_code(text: str) -> int | None:
    for rx in _CODE_PORT:
        m = rx.search(text)
        if m:
            return valid_port(m.group(1))
    return None


# -- the provider ------------------------------------------------------------------------------------------
class PythonProvider:
    name = "python"

    def detect(self, src: SourceTree) -> bool:
        if any(src.has_file(m) for m in MANIFESTS if m != "pyproject.toml"):
            return True
        if src.has_file("pyproject.toml"):
            py = src.read_toml("pyproject.toml")
            # A pyproject with only tool settings (ruff, black) belongs to any repo; it does not make one Python.
            if py is None or "project" in py or "poetry" in as_dict(py.get("tool")) or "build-system" in py:
                return True
        return any(src.has_file(f) for f in ENTRY_HINTS)

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="python")
        proj = read_project(src)
        if proj.manifest:
            note(det, proj.manifest, f"{proj.manifest} declares Python dependencies", W_MANIFEST)
        elif src.has_file("pyproject.toml") and "pyproject.toml" in src.invalid:
            note(det, "pyproject.toml", "pyproject.toml is present but invalid", W_MANIFEST // 2)
        else:
            hint = next(f for f in ENTRY_HINTS if src.has_file(f)) if any(
                src.has_file(f) for f in ENTRY_HINTS) else None
            note(det, hint or ".", f"{hint} is a Python entry point, but no manifest lists dependencies",
                 W_MANIFEST // 2)
        det.package_manager = package_manager(src, proj, det)
        det.runtime_version = runtime_version(src, proj, det)
        deps = proj.deps
        for dep, service in DEP_SERVICES.items():
            if dep in deps:
                add_service(det, service, deps[dep], f"depends on {dep}")
        for extra in proj.extras:
            if extra.startswith("celery[") and "redis" in extra:
                add_service(det, "redis", deps.get("celery", "requirements.txt"), "depends on celery[redis]")

        framework = next(((fw, dep) for dep, fw in FRAMEWORKS if dep in deps), None)
        files = python_files(src)
        if framework is None and src.has_file("manage.py") and "django" in (src.read_text("manage.py") or ""):
            framework = ("django", "manage.py")
        if framework:
            fw, dep = framework
            det.framework = fw
            note(det, deps.get(dep, "manage.py"), f"depends on {dep}", W_FRAMEWORK)
        analyze_framework(src, det, proj, files)
        scan_code_services(src, det, files)
        if det.start_command is None:
            det.start_command_help = (
                "No start command found: add a Procfile with `web: <command>` (for example "
                "`web: gunicorn --bind 0.0.0.0:$PORT app:app`), or a main.py/app.py at the app root.")
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan | None:
        return python_plan.plan(det, src)


def analyze_framework(src: SourceTree, det: Detection, proj: PyProject, files: list[str]) -> None:
    fw = det.framework
    deps = proj.deps
    if "mkdocs" in deps and src.has_file("mkdocs.yml") and fw is None:
        # A documentation site: mkdocs builds static HTML, no Python runs in production.
        det.framework, det.build_command, det.output_dir, det.internal_port = "mkdocs", "mkdocs build", "site", 80
        note(det, "mkdocs.yml", "mkdocs.yml: a MkDocs site built to site/", W_FRAMEWORK)
        return
    if fw == "django":
        _django(src, det, deps)
        return
    served = SERVERS.get(fw or "")
    if fw is not None and served is not None and served.scripts:
        _script_framework(src, det, fw, served, files)
        return
    ctor = served.ctor if served else None
    app = find_app(src, ctor, factory=served is not None and served.factory) if ctor else None
    if fw == "fasthtml":
        # `app, rt = fast_app()` (or `app = FastHTML()`): an ASGI app, which its own `serve()` only runs in
        # development (`python main.py` exits with "run this app with uvicorn main:app" in some of them).
        app = _fasthtml_app(src, files)
    if app is None and fw is None:
        # No framework dependency: a Flask/FastAPI app whose manifest is missing still shows its app object.
        for guess, guess_ctor in (("fastapi", "FastAPI"), ("flask", "Flask")):
            app = find_app_object(src, files[:40], guess_ctor)
            if app:
                det.framework = fw = guess
                note(det, app.file, f"{app.file} creates a {guess_ctor} app", W_FRAMEWORK // 2)
                break
    text = src.read_text(app.file) if app else None
    port = port_in_code(text or "") if text else None
    if app:
        note(det, app.file, f"the app object is {app.target}", W_ENTRYPOINT)
    if port:
        note(det, app.file if app else "", f"the code binds port {port}")
    port = port or DEFAULT_PORT
    det.internal_port = port
    is_asgi_falcon = fw == "falcon" and "asgi" in (text or "")
    served = SERVERS.get(fw or "")
    server = "uvicorn" if is_asgi_falcon else served.server if served else None
    if app and server == "gunicorn":
        target = app.target.replace(":app", ":server") if fw == "dash" and ":app" in app.target else app.target
        det.start_command = _gunicorn(target, port, app.chdir)
        note(det, app.file, f"{fw} is WSGI: served by gunicorn on {target}")
        if "gunicorn" not in deps:
            note(det, app.file, "gunicorn is not a dependency: the image must install it")
        return
    if app and server == "uvicorn":
        det.start_command = _uvicorn(app.target, port, app.chdir)
        note(det, app.file, f"{fw} is ASGI: served by uvicorn on {app.target}")
        return
    if app and served and served.start and server == "sanic":
        det.start_command = served.start.format(target=app.target, port=port)
        note(det, app.file, f"sanic serves {app.target}")
        return
    if app and served and served.start and server == "aiohttp" and app.factory:
        det.start_command = served.start.format(target=app.target.rstrip("()"), port=port)
        return
    main = next((f for f in ("main.py", "app.py", "server.py", "run.py", "bot.py", "application.py",
                             "src/main.py", "src/app.py") if src.has_file(f)), None)
    if app and app.file.count("/") == 0:
        main = app.file
    if main:
        det.start_command = f"python {main}"
        note(det, main, f"{main} is the main file", W_ENTRYPOINT)
        if fw is None:
            det.internal_port = port_in_code(src.read_text(main) or "") or None
    elif fw is None:
        det.internal_port = None
    for name, target in proj.scripts.items():
        if det.start_command is None and ":" in target:
            det.start_command = name
            note(det, "pyproject.toml", f"[project.scripts] defines the `{name}` command")
            break


def _django(src: SourceTree, det: Detection, deps: dict[str, str]) -> None:
    det.internal_port = DEFAULT_PORT
    manage = next((f for f in ("manage.py", "src/manage.py", "app/manage.py", "backend/manage.py")
                   if src.has_file(f)), None) or next(iter(src.glob("*/manage.py", max_depth=1)), None)
    base = str(PurePosixPath(manage).parent) if manage else "."
    chdir = None if base == "." else base
    settings = None
    if manage:
        m = re.search(r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)['\"]", src.read_text(manage) or "")
        if m:
            settings = m.group(1)
            note(det, manage, f"manage.py uses the settings module {settings}", W_ENTRYPOINT)
    wsgi = None
    settings_files = []
    if settings:
        sp = settings.replace(".", "/")
        prefix = f"{base}/" if chdir else ""
        settings_files = [f for f in (f"{prefix}{sp}.py", f"{prefix}{sp}/__init__.py") if src.has_file(f)]
        settings_files += src.glob(f"{prefix}{sp.rsplit('/', 1)[0]}/settings/*.py", max_depth=5)
    if not settings_files:
        settings_files = src.glob("**/settings.py", max_depth=3) + src.glob("**/settings/*.py", max_depth=4)
    for f in settings_files:
        text = src.read_text(f) or ""
        m = re.search(r"WSGI_APPLICATION\s*=\s*['\"]([\w.]+)\.application['\"]", text)
        if m and wsgi is None:
            wsgi = m.group(1)
            note(det, f, f"WSGI_APPLICATION is {wsgi}.application")
        _django_db(src, det, f, text)
    if wsgi is None:
        project = settings.split(".")[0] if settings else None
        cands = [f for f in src.glob("**/wsgi.py", max_depth=3)
                 if not chdir or f.startswith(f"{chdir}/")]
        if project:
            cands.sort(key=lambda f: f"{project}/wsgi.py" not in f)
        if cands:
            rel = cands[0][len(chdir) + 1:] if chdir else cands[0]
            wsgi = module_of(rel)[0]
            note(det, cands[0], f"{cands[0]} is the WSGI entry point")
        elif project:
            wsgi = f"{project}.wsgi"
    if wsgi:
        det.start_command = _gunicorn(wsgi, DEFAULT_PORT, chdir)
        if "gunicorn" not in deps:
            note(det, manage or ".", "gunicorn is not a dependency: the image must install it")


_DJANGO_ENGINES = (("postgresql", "postgres"), ("postgis", "postgres"), ("mysql", "mysql"),
                   ("sqlite3", "sqlite"), ("djongo", "mongodb"))


def _django_db(src: SourceTree, det: Detection, file: str, text: str) -> None:
    for engine, service in _DJANGO_ENGINES:
        if re.search(rf"['\"]django\.(?:contrib\.gis\.)?db\.backends\.{engine}\w*['\"]|['\"]{engine}['\"]",
                     text) and ("DATABASES" in text or "ENGINE" in text):
            add_service(det, service, file, f"DATABASES uses the {engine} backend")
    if "dj_database_url" in text or "env.db(" in text or "DATABASE_URL" in text:
        for service in services_from_text(text):
            add_service(det, service, file, f"the default DATABASE_URL is {service}")


def _script_framework(src: SourceTree, det: Detection, fw: str, served: Server, files: list[str]) -> None:
    """Streamlit, Gradio, Chainlit: a script is the app; find the one that imports the framework."""
    names = served.scripts
    script = next((f for f in names if src.has_file(f) and fw in (src.read_text(f) or "")), None)
    if script is None:
        script = next((f for f in files if re.search(rf"^\s*(?:import|from)\s+{fw}\b", src.read_text(f) or "",
                                                      re.MULTILINE)), None)
    port = served.port
    det.internal_port = port
    if script is None:
        return
    note(det, script, f"{script} imports {fw}", W_ENTRYPOINT)
    if served.server == "python":
        # The script launches the app itself, on the port its code names.
        code_port = port_in_code(src.read_text(script) or "")
        det.internal_port = code_port or port
    det.start_command = (served.start or "").format(script=script, port=port)


def scan_code_services(src: SourceTree, det: Detection, files: list[str]) -> None:
    """Connection URLs in config modules (`SQLALCHEMY_DATABASE_URI = "sqlite:///app.db"`), stdlib sqlite3."""
    for f in [f for f in files if PurePosixPath(f).name in ("config.py", "settings.py", "app.py", "main.py",
                                                          "database.py", "db.py", "__init__.py")][:20]:
        text = src.read_text(f) or ""
        for service in services_from_text(text):
            add_service(det, service, f, f"{f} has a {service} connection URL")
        if re.search(r"^\s*(?:import sqlite3|from sqlite3 import)", text, re.MULTILINE):
            add_service(det, "sqlite", f, f"{f} imports sqlite3")

"""Python: requirements files, pyproject (PEP 621, poetry, pdm, uv), Pipfile, setup.py; WSGI/ASGI frameworks."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_LOCKFILE,
    W_MANIFEST,
    W_VERSION,
    as_dict,
    as_list,
    note,
    valid_port,
)
from services.detector.providers.common import add_service, services_from_text
from shared.detection import Detection
from shared.source import SourceTree

DEFAULT_PORT = 8000  # what the generated gunicorn/uvicorn command binds unless the code names a port

REQUIREMENTS = ("requirements.txt", "requirements/base.txt", "requirements/prod.txt", "requirements/production.txt",
                "requirements/common.txt", "requirements/requirements.txt", "requirements-prod.txt",
                "requirements/main.txt", "requirements.in")
MANIFESTS = ("pyproject.toml", "Pipfile", "setup.py", "setup.cfg", "environment.yml", *REQUIREMENTS)
# Files that only a Python app has at its root, even without a manifest.
ENTRY_HINTS = ("manage.py", "app.py", "main.py", "wsgi.py", "asgi.py", "streamlit_app.py", "application.py")

# Framework dependency -> framework id, most specific first: a Django app may list starlette, a FastAPI app
# lists starlette, a Dash app is a Flask app underneath.
FRAMEWORKS = (
    ("django", "django"), ("fastapi", "fastapi"), ("python-fasthtml", "fasthtml"), ("streamlit", "streamlit"),
    ("gradio", "gradio"),
    ("dash", "dash"), ("flask", "flask"), ("litestar", "litestar"), ("sanic", "sanic"), ("quart", "quart"),
    ("starlette", "starlette"), ("aiohttp", "aiohttp"), ("tornado", "tornado"), ("falcon", "falcon"),
    ("pyramid", "pyramid"), ("bottle", "bottle"), ("chainlit", "chainlit"),
)
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


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[([^\]]*)\])?")


def parse_requirement(line: str) -> tuple[str, list[str]] | None:
    """(normalized name, extras) of one PEP 508 requirement, or None for options, URLs and comments."""
    egg = re.search(r"#egg=([A-Za-z0-9._-]+)", line)
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-") or "://" in line.split(" ")[0]:
        return (norm(egg.group(1)), []) if egg and "://" in line else None
    m = _REQ_NAME.match(line)
    if not m:
        return None
    extras = [norm(e) for e in (m.group(3) or "").split(",") if e.strip()]
    return norm(m.group(1)), extras


@dataclass
class PyProject:
    deps: dict[str, str] = field(default_factory=dict)  # name -> file that lists it
    extras: set[str] = field(default_factory=set)       # "name[extra]" pairs, e.g. "fastapi[standard]"
    manifest: str | None = None
    package_manager: str = "pip"
    scripts: dict[str, str] = field(default_factory=dict)
    requires_python: str | None = None
    name: str | None = None


def _add_reqs(proj: PyProject, lines: list[str], file: str) -> None:
    for line in lines:
        parsed = parse_requirement(line) if isinstance(line, str) else None
        if parsed:
            proj.deps.setdefault(parsed[0], file)
            proj.extras.update(f"{parsed[0]}[{e}]" for e in parsed[1])


def _read_requirements(src: SourceTree, proj: PyProject, rel: str, depth: int = 0) -> None:
    text = src.read_text(rel)
    if text is None or depth > 3:
        return
    base = PurePosixPath(rel).parent
    for line in text.splitlines():
        m = re.match(r"^\s*(?:-r|--requirement)\s*(\S+)", line)
        if m:
            _read_requirements(src, proj, str(base / m.group(1)) if str(base) != "." else m.group(1), depth + 1)
            continue
        _add_reqs(proj, [line], rel)


def read_project(src: SourceTree) -> PyProject:
    proj = PyProject()
    py = src.read_toml("pyproject.toml") if src.has_file("pyproject.toml") else None
    if py:
        project = as_dict(py.get("project"))
        tool = as_dict(py.get("tool"))
        poetry = as_dict(tool.get("poetry"))
        if project:
            _add_reqs(proj, as_list(project.get("dependencies")), "pyproject.toml")
            rp = project.get("requires-python")
            proj.requires_python = rp if isinstance(rp, str) else None
            proj.scripts.update({k: str(v) for k, v in as_dict(project.get("scripts")).items()})
            proj.name = project.get("name")
        if poetry:
            for name, spec in as_dict(poetry.get("dependencies")).items():
                if norm(name) == "python":
                    proj.requires_python = proj.requires_python or (
                        spec if isinstance(spec, str) else spec.get("version") if isinstance(spec, dict) else None)
                    continue
                proj.deps.setdefault(norm(name), "pyproject.toml")
                if isinstance(spec, dict):
                    proj.extras.update(f"{norm(name)}[{norm(e)}]" for e in spec.get("extras") or [])
            proj.scripts.update({k: str(v) for k, v in as_dict(poetry.get("scripts")).items()})
            proj.name = proj.name or poetry.get("name")
        if proj.deps or project or poetry:
            proj.manifest = "pyproject.toml"
        if poetry:
            proj.package_manager = "poetry"
        elif "pdm" in tool:
            proj.package_manager = "pdm"
        elif "uv" in tool:
            proj.package_manager = "uv"
    pipfile = src.read_toml("Pipfile") if src.has_file("Pipfile") else None
    if pipfile:
        for name in as_dict(pipfile.get("packages")):
            proj.deps.setdefault(norm(name), "Pipfile")
        requires = as_dict(pipfile.get("requires"))
        proj.requires_python = proj.requires_python or requires.get("python_full_version") or \
            requires.get("python_version")
        proj.manifest = proj.manifest or "Pipfile"
    for rel in REQUIREMENTS:
        if src.has_file(rel):
            _read_requirements(src, proj, rel)
            proj.manifest = proj.manifest or rel
    if src.has_file("setup.py"):
        text = src.read_text("setup.py") or ""
        m = re.search(r"install_requires\s*=\s*\[(.*?)\]", text, re.DOTALL)
        if m:
            _add_reqs(proj, re.findall(r"['\"]([^'\"]+)['\"]", m.group(1)), "setup.py")
        proj.manifest = proj.manifest or "setup.py"
    if src.has_file("setup.cfg"):
        text = src.read_text("setup.cfg") or ""
        m = re.search(r"install_requires\s*=\s*\n((?:[ \t]+.+\n?)+)", text)
        if m:
            _add_reqs(proj, m.group(1).splitlines(), "setup.cfg")
        proj.manifest = proj.manifest or ("setup.cfg" if m else None)
    if src.has_file("environment.yml"):
        env = src.read_yaml("environment.yml")
        for dep in as_list(as_dict(env).get("dependencies")):
            if isinstance(dep, dict):
                _add_reqs(proj, [d for d in as_list(dep.get("pip")) if isinstance(d, str)], "environment.yml")
            elif isinstance(dep, str):
                _add_reqs(proj, [dep.split("=")[0]], "environment.yml")
        proj.manifest = proj.manifest or "environment.yml"
    return proj


# -- package manager and runtime version -------------------------------------------------------------------
_LOCKS = (("uv.lock", "uv"), ("poetry.lock", "poetry"), ("pdm.lock", "pdm"), ("Pipfile.lock", "pipenv"))


def package_manager(src: SourceTree, proj: PyProject, det: Detection) -> str:
    for lock, pm in _LOCKS:
        if src.has_file(lock):
            note(det, lock, f"{lock} pins the dependencies: {pm}", W_LOCKFILE)
            return pm
    if proj.package_manager != "pip":
        note(det, "pyproject.toml", f"pyproject.toml has a [tool.{proj.package_manager}] section")
        return proj.package_manager
    if src.has_file("Pipfile"):
        note(det, "Pipfile", "Pipfile without a lockfile: pipenv")
        return "pipenv"
    return "pip"


def minor(version: str) -> str | None:
    m = re.search(r"(\d+)\.(\d+)", version)
    return f"{m.group(1)}.{m.group(2)}" if m else (re.search(r"\d+", version) or [None])[0]


def runtime_version(src: SourceTree, proj: PyProject, det: Detection) -> str | None:
    text = src.read_text(".python-version")
    if text and text.strip():
        v = minor(text.strip().splitlines()[0])
        if v:
            note(det, ".python-version", f".python-version pins Python {v}", W_VERSION)
            return v
    text = src.read_text("runtime.txt")
    if text and "python" in text.lower():
        v = minor(text)
        if v:
            note(det, "runtime.txt", f"runtime.txt pins Python {v}", W_VERSION)
            return v
    text = src.read_text(".tool-versions")
    m = re.search(r"^\s*python\s+(\S+)", text or "", re.MULTILINE)
    if m and minor(m.group(1)):
        note(det, ".tool-versions", f".tool-versions pins Python {minor(m.group(1))}", W_VERSION)
        return minor(m.group(1))
    if proj.requires_python:
        v = minor(str(proj.requires_python))
        if v:
            file = "Pipfile" if proj.manifest == "Pipfile" else "pyproject.toml"
            note(det, file, f"requires Python {proj.requires_python}: using {v}", W_VERSION)
            return v
    return None


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


def _gunicorn(target: str, port: int, chdir: str | None, worker: str | None = None) -> str:
    parts = ["gunicorn", "--bind", f"0.0.0.0:{port}"]
    if chdir:
        parts += ["--chdir", chdir]
    if worker:
        parts += ["-k", worker]
    # A factory target has parentheses, which a shell would parse: quote it.
    return " ".join([*parts, f"'{target}'" if "(" in target else target])


def _uvicorn(target: str, port: int, chdir: str | None) -> str:
    extra = f" --app-dir {chdir}" if chdir else ""
    if target.endswith("()"):  # an app factory: uvicorn calls it itself
        return f"uvicorn {target[:-2]} --factory --host 0.0.0.0 --port {port}{extra}"
    return f"uvicorn {target} --host 0.0.0.0 --port {port}{extra}"


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
    # A module-level `app = create_app()` (wsgi.py) is an app object too, and beats the factory itself.
    ctor = {
        "fastapi": "FastAPI|create_app|get_application|get_app|make_app",
        "flask": "Flask|create_app|make_app",
        "starlette": "Starlette",
        "litestar": "Litestar",
        "quart": "Quart",
        "sanic": "Sanic",
        "dash": "Dash",
        "falcon": r"App|API|asgi\.App",
        "aiohttp": r"web\.Application|Application",
        "bottle": "Bottle",
        "pyramid": "Configurator",
        "tornado": r"(?:tornado\.)?web\.Application|Application",
    }.get(fw or "")
    if fw in ("streamlit", "gradio", "chainlit"):
        _script_framework(src, det, fw, files)
        return
    app = find_app(src, ctor, factory=fw in ("flask", "quart", "aiohttp", "fastapi", "starlette", "litestar")) \
        if ctor else None
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
    if app and (fw in ("flask", "dash", "bottle", "pyramid") or (fw == "falcon" and not is_asgi_falcon)):
        target = app.target.replace(":app", ":server") if fw == "dash" and ":app" in app.target else app.target
        det.start_command = _gunicorn(target, port, app.chdir)
        note(det, app.file, f"{fw} is WSGI: served by gunicorn on {target}")
        if "gunicorn" not in deps:
            note(det, app.file, "gunicorn is not a dependency: the image must install it")
        return
    if app and (fw in ("fastapi", "starlette", "litestar", "quart", "fasthtml") or is_asgi_falcon):
        det.start_command = _uvicorn(app.target, port, app.chdir)
        note(det, app.file, f"{fw} is ASGI: served by uvicorn on {app.target}")
        return
    if app and fw == "sanic":
        det.start_command = f"sanic {app.target} --host 0.0.0.0 --port {port}"
        note(det, app.file, f"sanic serves {app.target}")
        return
    if app and fw == "aiohttp" and app.factory:
        det.start_command = f"python -m aiohttp.web -H 0.0.0.0 -P {port} {app.target.rstrip('()')}"
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


def _script_framework(src: SourceTree, det: Detection, fw: str, files: list[str]) -> None:
    """Streamlit, Gradio, Chainlit: a script is the app; find the one that imports the framework."""
    names = {"streamlit": ("streamlit_app.py", "app.py", "main.py", "Home.py", "Hello.py"),
             "gradio": ("app.py", "main.py", "demo.py"), "chainlit": ("app.py", "main.py")}[fw]
    script = next((f for f in names if src.has_file(f) and fw in (src.read_text(f) or "")), None)
    if script is None:
        script = next((f for f in files if re.search(rf"^\s*(?:import|from)\s+{fw}\b", src.read_text(f) or "",
                                                      re.MULTILINE)), None)
    port = {"streamlit": 8501, "gradio": 7860, "chainlit": 8000}[fw]
    det.internal_port = port
    if script is None:
        return
    note(det, script, f"{script} imports {fw}", W_ENTRYPOINT)
    if fw == "streamlit":
        det.start_command = f"streamlit run {script} --server.port {port} --server.address 0.0.0.0"
    elif fw == "chainlit":
        det.start_command = f"chainlit run {script} --host 0.0.0.0 --port {port}"
    else:
        code_port = port_in_code(src.read_text(script) or "")
        det.internal_port = code_port or port
        det.start_command = f"python {script}"


def scan_code_services(src: SourceTree, det: Detection, files: list[str]) -> None:
    """Connection URLs in config modules (`SQLALCHEMY_DATABASE_URI = "sqlite:///app.db"`), stdlib sqlite3."""
    for f in [f for f in files if PurePosixPath(f).name in ("config.py", "settings.py", "app.py", "main.py",
                                                          "database.py", "db.py", "__init__.py")][:20]:
        text = src.read_text(f) or ""
        for service in services_from_text(text):
            add_service(det, service, f, f"{f} has a {service} connection URL")
        if re.search(r"^\s*(?:import sqlite3|from sqlite3 import)", text, re.MULTILINE):
            add_service(det, "sqlite", f, f"{f} imports sqlite3")


"""The Python build plan: how the detected app installs (the lockfile decides), and what serves it."""

from __future__ import annotations

import re

from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, image_version, major_minor, serving_port
from shared.source import SourceTree

MANIFESTS = [
    "requirements.txt",
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "Pipfile",
    "Pipfile.lock",
    "pdm.lock",
]
# Pinned build tools (installed in a throw-away stage, so none of them reaches the runtime image).
TOOLS = {"poetry": "poetry==1.8.5", "uv": "uv==0.5.11", "pipenv": "pipenv==2024.4.0", "pdm": "pdm==2.22.1"}
SERVERS = {"gunicorn": "gunicorn==23.0.0", "uvicorn": "uvicorn==0.32.1"}
FASTLITE = "fastlite==0.2.4"
SETUPTOOLS = "setuptools==80.9.0"  # the last line with pkg_resources (81 drops it)
# Packages that compile against a C library when pip finds no wheel: (build packages, runtime packages), from
# Debian. psycopg2 is source only; psycopg2-binary has wheels for a Python line only from the release in
# _BINARY_WHEELS on (a 2022 pin on Python 3.11 builds from source: "pg_config executable not found").
# python3-dev: Portside's local stand-in images (Debian's Python) have no headers; the official images do.
NATIVE = {"psycopg2": (["gcc", "libc6-dev", "libpq-dev", "python3-dev"], ["libpq5"])}
_BINARY_WHEELS = {"3.11": (2, 9, 5), "3.12": (2, 9, 9), "3.13": (2, 9, 10)}
# A requirement line, an entry of a TOML array (`dependencies = ["psycopg2==2.9.9", ...]`) or of a YAML list.
_PSYCOPG2 = re.compile(r"(?:^|[\[,])\s*(?:-\s+)?[\"']?psycopg2(-binary)?(?![\w-])\s*(?:\[[^\]]*\])?"
                       r"\s*(?:==\s*([0-9.]+))?", re.MULTILINE)
_OLD_GUNICORN = re.compile(r"^\s*gunicorn\s*(?:\[[^\]]*\])?\s*(?:==|<=|~=|<)\s*(\d+)", re.MULTILINE)


# A conda package spec PyPI understands once `=` becomes `==`: a name, extras, version clauses; nothing a shell
# would read (no quotes, `$`, spaces or `;`). Clauses with `<`/`>` are double-quoted in the Dockerfile.
_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?([<>=!~]=?[A-Za-z0-9.*+!_-]+)?"
                   r"(,[<>=!~]=?[A-Za-z0-9.*+!_-]+)*$")
# What conda lists that pip must not install over the image's own Python.
_CONDA_SKIP = {"python", "pip", "setuptools", "wheel"}


def conda_packages(src: SourceTree) -> tuple[list[str], list[str]]:
    """(pip specs, dropped entries) from environment.yml's dependencies and its `pip:` list."""
    env = src.read_yaml("environment.yml")
    deps = env.get("dependencies") if isinstance(env, dict) else None
    specs: list[str] = []
    dropped: list[str] = []
    for dep in deps if isinstance(deps, list) else []:
        entries: list[tuple[str, bool]] = []
        if isinstance(dep, str):
            entries.append((dep, True))
        elif isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            entries += [(d, False) for d in dep["pip"] if isinstance(d, str)]
        for raw, conda in entries:
            spec = raw.strip()
            if conda:
                spec = spec.split("::", 1)[-1]
                spec = re.sub(r"\s+", "", re.sub(r"^(\S+)\s+(\d)", r"\1==\2", spec))
                spec = re.sub(r"(?<=[A-Za-z0-9\]])=(?=[0-9*])", "==", spec)  # numpy=1.26 -> numpy==1.26
                spec = re.sub(r"==([0-9.]+)=\S+$", r"==\1", spec)  # a build string: numpy=1.26=py311h...
            name = re.split(r"[\[<>=!~,]", spec, maxsplit=1)[0].lower()
            if conda and name in _CONDA_SKIP:
                continue
            if not _SPEC.match(spec):
                dropped.append(raw.strip()[:60])
                continue
            specs.append(f'"{spec}"' if any(c in spec for c in "<>") else spec)
    return specs, dropped


def _fasthtml_uses_a_database(src: SourceTree, start: str) -> bool:
    """The app module of `uvicorn main:app` passes a database file to fast_app() or imports fastlite itself."""
    target = re.search(r"(?:^|\s)([\w.]+):\w+(?:\s|$)", start)
    if not target:
        return False
    code = src.read_text(target.group(1).replace(".", "/") + ".py") or ""
    return bool(re.search(r"fast_app\(\s*(?:['\"]|db_file\s*=)|^\s*(?:from|import)\s+fastlite\b", code, re.MULTILINE))


def _needs_pkg_resources(requirements: str) -> bool:
    """A pinned gunicorn older than 21 (`gunicorn==20.0.4`): 21.0 stopped importing pkg_resources."""
    pin = _OLD_GUNICORN.search(requirements)
    return pin is not None and int(pin.group(1)) < 21


def _compiles_psycopg2(requirements: str, version: str) -> bool:
    """psycopg2 itself, or a psycopg2-binary pin older than the first release with wheels for `version`."""
    for match in _PSYCOPG2.finditer(requirements):
        if not match.group(1):
            return True
        pin = tuple(int(p) for p in match.group(2).split(".") if p) if match.group(2) else None
        if pin is not None and pin < _BINARY_WHEELS.get(version, (0,)):
            return True
    return False


def plan(det: Detection, src: SourceTree) -> BuildPlan | None:
    """None when nothing can run (no start command and no static output): `start_command_help` says why."""
    static = det.output_dir is not None and not det.start_command
    if not static and not det.start_command:
        return None
    version = major_minor(det.runtime_version, DEFAULT_VERSIONS["python"])
    present = [m for m in MANIFESTS if src.has_file(m)]
    # The lockfile decides how dependencies are installed; each tool only exports it to a pinned requirements file.
    if "poetry.lock" in present:
        pm, manifests = "poetry", ["pyproject.toml", "poetry.lock"]
    elif "uv.lock" in present:
        pm, manifests = "uv", ["pyproject.toml", "uv.lock"]
    elif "Pipfile.lock" in present:
        pm, manifests = "pipenv", ["Pipfile", "Pipfile.lock"]
    elif "pdm.lock" in present:
        pm, manifests = "pdm", ["pyproject.toml", "pdm.lock"]
    elif "requirements.txt" in present:
        pm, manifests = "pip", ["requirements.txt"]
    elif "pyproject.toml" in present:
        pm, manifests = "pip-project", ["pyproject.toml"]
    else:
        pm, manifests = "pip-none", []
    notes: list[str] = []
    extras: list[str] = []
    if pm == "pip-none" and src.has_file("environment.yml"):
        # No conda here (its channels are not reachable): the environment's packages install with pip.
        extras, dropped = conda_packages(src)
        notes.append("environment.yml (conda): its packages install with pip from PyPI under the same names; "
                     "a conda-only package needs a requirements.txt (or your own Dockerfile).")
        if dropped:
            notes.append(f"Not installed from environment.yml: {', '.join(dropped)[:300]}.")
    version = image_version("python", version, notes)
    if pm == "pip-project":
        notes.append("No lockfile: dependencies resolve at build time. Commit a lockfile for repeatable builds.")
    read = [*(m for m in present if not m.endswith(".lock")), *(["environment.yml"] if extras else [])]
    text = "\n".join((src.read_text(m) or "").lower() for m in read)
    start = "" if static else det.start_command or ""
    first = start.split()[0] if start else ""
    locks = "\n".join((src.read_text(m) or "").lower() for m in present if m.endswith(".lock"))
    # A server the lockfile already pins (uv.lock via fastapi[standard]) must not be pinned again: two pins conflict.
    if first in SERVERS and first not in text and first not in locks:
        extras.append(SERVERS[first])
    if det.framework == "fasthtml" and "fastlite" not in text and _fasthtml_uses_a_database(src, start):
        # fast_app('data/todos.db', ...) imports fastlite, which python-fasthtml stopped depending on (0.12).
        extras.append(FASTLITE)
        notes.append(f"fast_app() is given a database file: {FASTLITE} (which python-fasthtml no longer pulls in) "
                     "is installed with it.")
    if _needs_pkg_resources(text) and not re.search(r"^\s*setuptools\b", text, re.MULTILINE):
        # The virtualenv has no setuptools (it is made without pip), and gunicorn before 21 imports pkg_resources
        # at start ("No module named 'pkg_resources'"); the pin is the last line that has it.
        extras.append(SETUPTOOLS)
        notes.append(f"gunicorn before 21 needs pkg_resources: {SETUPTOOLS} is installed with it.")
    build_packages: list[str] = []
    runtime_packages: list[str] = []
    if _compiles_psycopg2(text, version):
        build_packages, runtime_packages = NATIVE["psycopg2"]
        notes.append(f"psycopg2 builds from source here (no wheel for Python {version}): a build stage gets "
                     f"{' '.join(build_packages)}; the image keeps only {' '.join(runtime_packages)}.")
    port = serving_port("python", det.internal_port, static)
    return BuildPlan(
        "python", det.framework, pm, version, port, start, det.build_command, manifests, extras,
        "python/static.Dockerfile.j2" if static else "python/Dockerfile.j2",
        output_dir=det.output_dir if static else None, notes=notes, build_tool=TOOLS.get(pm, ""),
        build_packages=build_packages, runtime_packages=runtime_packages,
    )

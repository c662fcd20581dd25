"""Which Python package manager installs the app, what its manifests declare (requirements files, pyproject
(PEP 621, poetry, pdm, uv), Pipfile, setup.py, setup.cfg, environment.yml), and which Python runs it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from services.detector.providers.base import (
    W_LOCKFILE,
    W_VERSION,
    as_dict,
    as_list,
    note,
)
from shared.detection import Detection
from shared.source import SourceTree

REQUIREMENTS = ("requirements.txt", "requirements/base.txt", "requirements/prod.txt", "requirements/production.txt",
                "requirements/common.txt", "requirements/requirements.txt", "requirements-prod.txt",
                "requirements/main.txt", "requirements.in")


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
    if src.has_file("environment.yml"):
        for dep in as_list(as_dict(src.read_yaml("environment.yml")).get("dependencies")):
            m = re.match(r"^\s*(?:[\w-]+::)?python\s*[=<>~ ]=?\s*(\d+\.\d+)", dep) if isinstance(dep, str) else None
            if m:
                note(det, "environment.yml", f"environment.yml pins Python {m.group(1)}", W_VERSION)
                return m.group(1)
    if proj.requires_python:
        v = minor(str(proj.requires_python))
        if v:
            file = "Pipfile" if proj.manifest == "Pipfile" else "pyproject.toml"
            note(det, file, f"requires Python {proj.requires_python}: using {v}", W_VERSION)
            return v
    return None

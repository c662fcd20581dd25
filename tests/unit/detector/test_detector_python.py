"""Python provider: manifests, package managers, app objects, ports and services."""

from __future__ import annotations

import pytest

from services.detector.providers.python import PythonProvider, module_of, port_in_code
from services.detector.providers.python.package_manager import parse_requirement
from services.detector.service import detect
from shared.source import SourceTree

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("line", "expected"), [
    ("Flask==3.0.3", ("flask", [])),
    ("uvicorn[standard]>=0.29 ; python_version >= '3.8'", ("uvicorn", ["standard"])),
    ("psycopg2_binary~=2.9  # db", ("psycopg2-binary", [])),
    ("-r base.txt", None),
    ("git+https://github.com/pallets/flask.git#egg=Flask", ("flask", [])),
    ("# just a comment", None),
])
def test_python_parse_requirement_normalizes_names(line: str, expected: object) -> None:
    assert parse_requirement(line) == expected


def test_python_requirements_follow_includes(repo) -> None:
    root = repo({"requirements.txt": "-r requirements/base.txt\n", "requirements/base.txt": "django==5.0\n",
                 "manage.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'site.settings')\n"})
    assert detect(root).framework == "django"


@pytest.mark.parametrize(("files", "pm"), [
    ({"pyproject.toml": "[project]\nname='a'\ndependencies=['flask']\n", "uv.lock": "version = 1\n"}, "uv"),
    ({"pyproject.toml": "[tool.poetry]\nname='a'\n[tool.poetry.dependencies]\npython='^3.12'\n"}, "poetry"),
    ({"pyproject.toml": "[project]\nname='a'\n[tool.pdm]\n"}, "pdm"),
    ({"Pipfile": "[packages]\nflask='*'\n"}, "pipenv"),
    ({"requirements.txt": "flask\n"}, "pip"),
])
def test_python_package_manager_from_lockfiles_and_tool_sections(repo, files: dict, pm: str) -> None:
    assert detect(repo(files)).package_manager == pm


def test_python_runtime_version_prefers_python_version_file(repo) -> None:
    root = repo({"pyproject.toml": "[project]\nname='a'\nrequires-python='>=3.10'\n", ".python-version": "3.12.3\n"})
    det = detect(root)
    assert det.runtime_version == "3.12"
    assert any(e.file == ".python-version" for e in det.evidence)


def test_python_pyproject_with_only_tool_config_is_not_python(repo) -> None:
    assert not PythonProvider().detect(SourceTree(repo({"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})))


def test_python_module_of_handles_src_layout_and_packages() -> None:
    assert module_of("src/pkg/app.py") == ("pkg.app", "src")
    assert module_of("pkg/__init__.py") == ("pkg", None)
    assert module_of("main.py") == ("main", None)


@pytest.mark.parametrize(("code", "port"), [
    ("app.run(host='0.0.0.0', port=5001)", 5001),
    ("port = int(os.environ.get('PORT', 9000))", 9000),
    ("uvicorn.run('main:app', host='0.0.0.0', port=8080, reload=False)", 8080),
    ("app.run(debug=True)", None),
])
def test_python_port_in_code(code: str, port: int | None) -> None:
    assert port_in_code(code) == port


def test_python_flask_factory_in_wsgi_file_wins_over_package_factory(repo) -> None:
    root = repo({"requirements.txt": "flask\n", "wsgi.py": "from app import create_app\napp = create_app()\n",
                 "app/__init__.py": "def create_app():\n    return Flask(__name__)\n"})
    assert detect(root).start_command == "gunicorn --bind 0.0.0.0:8000 wsgi:app"


def test_python_flask_port_from_code_is_bound_by_gunicorn(repo) -> None:
    root = repo({"requirements.txt": "flask\n",
                 "app.py": "app = Flask(__name__)\napp.run(host='0.0.0.0', port=int(os.getenv('PORT', 5050)))\n"})
    det = detect(root)
    assert det.internal_port == 5050
    assert det.start_command == "gunicorn --bind 0.0.0.0:5050 app:app"


def test_python_django_in_subdirectory_uses_chdir(repo) -> None:
    root = repo({"requirements.txt": "Django==5.0\n",
                 "src/manage.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'core.settings')\n",
                 "src/core/settings.py": "WSGI_APPLICATION = 'core.wsgi.application'\n",
                 "src/core/wsgi.py": "application = get_wsgi_application()\n"})
    assert detect(root).start_command == "gunicorn --bind 0.0.0.0:8000 --chdir src core.wsgi"


@pytest.mark.parametrize(("dep", "db"), [
    ("psycopg[binary]", "postgres"), ("asyncpg", "postgres"), ("PyMySQL", "mysql"), ("motor", "mongodb"),
    ("redis", "redis"), ("pika", "rabbitmq"),
])
def test_python_services_from_dependencies(repo, dep: str, db: str) -> None:
    root = repo({"requirements.txt": f"fastapi\n{dep}\n", "main.py": "app = FastAPI()\n"})
    assert detect(root).detected_db == db


def test_python_no_entry_point_gives_start_help(repo) -> None:
    det = detect(repo({"requirements.txt": "requests\n"}))
    assert det.start_command is None
    assert det.start_command_help and "Procfile" in det.start_command_help


def test_python_fastapi_factory_uses_uvicorn_factory_flag(repo) -> None:
    root = repo({"requirements.txt": "fastapi\nuvicorn\n",
                 "app/main.py": "from fastapi import FastAPI\n\n\ndef create_app() -> FastAPI:\n"
                                "    app = FastAPI()\n    return app\n"})
    assert detect(root).start_command == "uvicorn app.main:create_app --factory --host 0.0.0.0 --port 8000"


def test_python_module_level_app_from_factory_is_preferred(repo) -> None:
    root = repo({"requirements.txt": "fastapi\n",
                 "main.py": "from fastapi import FastAPI\n\ndef create_app():\n    return FastAPI()\n\n"
                            "app = create_app()\n"})
    assert detect(root).start_command == "uvicorn main:app --host 0.0.0.0 --port 8000"

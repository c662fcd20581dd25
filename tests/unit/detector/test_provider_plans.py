"""One home per language: the provider that detects a language also states its build plan,
the plan travels in the detection (through JSON, as in the database and the generate event), and the builder
renders it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.builder.dockerfile import render_dockerfile
from services.builder.plan import plan_for
from services.detector.registry import PLANNERS
from services.detector.service import detect
from shared.detection import Detection
from shared.errors import PortsideError
from shared.plan import PLANNED_STACKS
from tests.conftest import FIXTURE_REPOS


def test_every_planned_stack_has_its_provider_planner_and_the_builder_plans_none() -> None:
    assert set(PLANNED_STACKS) == set(PLANNERS)
    import services.builder.plan as builder_plan

    assert not hasattr(builder_plan, "PLANNERS")


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURE_REPOS.iterdir()
                                           if p.name.split("-")[0] in PLANNED_STACKS))
def test_the_plan_survives_the_trip_and_the_builder_needs_no_files(fixture: str) -> None:
    detection = detect(FIXTURE_REPOS / fixture)
    if detection.stack not in PLANNED_STACKS or (detection.start_command is None and detection.output_dir is None):
        pytest.skip(f"{fixture} has nothing to run")
    assert detection.plan is not None and detection.plan.stack == detection.stack
    travelled = Detection.model_validate_json(detection.model_dump_json())
    assert travelled.plan == detection.plan
    # The builder is given no directory: the plan that travelled is all it renders from.
    assert render_dockerfile(plan_for(travelled)) == render_dockerfile(plan_for(detection))


def test_go_plan_names_the_main_package_and_the_module_files(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/hello\n\ngo 1.21\n")
    (tmp_path / "go.sum").write_text("")
    (tmp_path / "cmd" / "server").mkdir(parents=True)
    (tmp_path / "cmd" / "server" / "main.go").write_text('package main\n\nfunc main() {}\n')
    plan = detect(tmp_path).plan
    assert plan is not None
    assert (plan.target, plan.manifests, plan.version, plan.locked) == ("./cmd/server", ["go.mod", "go.sum"], "1.22",
                                                                        True)
    assert any("1.21 has no base image here: using 1.22" in n for n in plan.notes)


def test_python_without_a_start_command_has_no_plan_and_the_builder_says_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.32.3\n")
    detection = detect(tmp_path)
    assert detection.plan is None
    with pytest.raises(PortsideError, match="Procfile"):
        plan_for(detection)


def test_a_detection_without_a_plan_is_refused_not_guessed() -> None:
    # Rows of an older schema read as missing (the API detects again); a hand-made one without a plan is refused.
    with pytest.raises(PortsideError) as err:
        plan_for(Detection(stack="go", start_command="./bin/app"))
    assert err.value.code == "UNSUPPORTED_STACK"


def test_a_provider_that_cannot_plan_says_what_to_add_and_the_builder_repeats_it(tmp_path: Path) -> None:
    (tmp_path / "mix.exs").write_text("defmodule Hello.MixProject do\n  use Mix.Project\nend\n")
    detection = detect(tmp_path)
    assert detection.stack == "elixir" and detection.plan is None
    assert detection.start_command_help == ("mix.exs names no `app:`; add one to its project (`app: :my_app`): "
                                             "Portside builds a release named after it.")
    with pytest.raises(PortsideError, match="names no `app:`"):
        plan_for(detection)


def test_dotnet_plans_an_fsharp_project_and_a_solution_without_one_keeps_detections_sentence(tmp_path: Path) -> None:
    fsharp = tmp_path / "fs"
    fsharp.mkdir()
    (fsharp / "App.fsproj").write_text('<Project Sdk="Microsoft.NET.Sdk.Web"><PropertyGroup>'
                                       "<TargetFramework>net8.0</TargetFramework></PropertyGroup></Project>")
    plan = detect(fsharp).plan
    assert plan is not None and (plan.target, plan.manifests, plan.artifact) == ("App.fsproj", ["App.fsproj"],
                                                                                 "App.dll")
    assert "RUN dotnet restore App.fsproj" in render_dockerfile(plan)
    solution = tmp_path / "sln"
    solution.mkdir()
    (solution / "App.sln").write_text("Microsoft Visual Studio Solution File, Format Version 12.00\n")
    detection = detect(solution)
    assert detection.stack == "dotnet" and detection.plan is None
    assert detection.start_command_help == "No .csproj found: add the web project to the solution directory."
    with pytest.raises(PortsideError, match="add the web project to the solution directory"):
        plan_for(detection)


def test_an_old_gunicorn_pin_gets_the_setuptools_its_pkg_resources_import_needs(tmp_path: Path) -> None:
    # As railwayapp-templates/flask pins it: gunicorn 20 imports pkg_resources, which the bare virtualenv lacks.
    plan = detect(FIXTURE_REPOS / "python-flask-old-gunicorn").plan
    assert plan is not None and plan.extra_packages == ["setuptools==80.9.0"]
    assert "-r requirements.txt setuptools==80.9.0" in render_dockerfile(plan)
    (tmp_path / "requirements.txt").write_text("Flask==3.0.0\ngunicorn==23.0.0\n")
    (tmp_path / "main.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    assert detect(tmp_path).plan.extra_packages == []  # type: ignore[union-attr]


def test_a_fasthtml_app_with_a_database_file_gets_fastlite() -> None:
    # As AnswerDotAI/fasthtml-example's todo app: fast_app('data/todos.db') fails with "No module named 'fastlite'".
    plan = detect(FIXTURE_REPOS / "python-fasthtml-database").plan
    assert plan is not None and plan.extra_packages == ["fastlite==0.2.4"]
    without = detect(FIXTURE_REPOS / "python-fasthtml-writes").plan
    assert without is not None and without.extra_packages == []


def test_a_conda_environment_installs_with_pip_and_a_hostile_entry_never_reaches_the_dockerfile() -> None:
    plan = detect(FIXTURE_REPOS / "python-conda-flask").plan
    assert plan is not None and plan.version == "3.12" and plan.package_manager == "pip-none"
    assert plan.extra_packages == ["flask==3.0", '"markupsafe>=2.1"', "gunicorn==23.0.0"]
    assert any("bad; rm -rf /" in n for n in plan.notes)
    text = render_dockerfile(plan)
    assert 'install --no-cache-dir flask==3.0 "markupsafe>=2.1" gunicorn==23.0.0' in text
    assert "rm -rf /" not in text.split("# Note: Not installed")[-1].split("\n", 1)[1]


def test_a_server_the_lockfile_already_pins_is_not_pinned_again(tmp_path: Path) -> None:
    # astral-sh/uv-fastapi-example: fastapi[standard] brings uvicorn through uv.lock; a second pin made pip refuse.
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0.1.0"\n'
                                             'dependencies = ["fastapi[standard]>=0.112.1"]\n')
    (tmp_path / "uv.lock").write_text('version = 1\n\n[[package]]\nname = "uvicorn"\nversion = "0.30.6"\n')
    (tmp_path / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    plan = detect(tmp_path).plan
    assert plan is not None and plan.package_manager == "uv" and plan.start_command.startswith("uvicorn ")
    assert plan.extra_packages == []


def test_psycopg2_without_a_wheel_for_the_python_gets_its_compiler_and_keeps_only_libpq(tmp_path: Path) -> None:
    # As digitalocean/sample-django pins it: psycopg2-binary 2.9.3 has no wheel for Python 3.11, so pip builds it
    # from source ("pg_config executable not found" without libpq-dev).
    plan = detect(FIXTURE_REPOS / "python-flask-psycopg2-source").plan
    assert plan is not None and plan.version == "3.11"
    assert (plan.build_packages, plan.runtime_packages) == (["gcc", "libc6-dev", "libpq-dev", "python3-dev"],
                                                            ["libpq5"])
    # The compiler and headers live in a throw-away stage that builds the virtualenv; the runtime stage installs
    # only libpq5 (and drops apt's caches) and copies the virtualenv in.
    text = render_dockerfile(plan)
    build, runtime = text.split("\nFROM python:3.11-slim\n")
    assert "FROM python:3.11-slim AS build" in build
    assert "install -y --no-install-recommends gcc libc6-dev libpq-dev python3-dev \\" in build
    assert "pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt" in build
    assert "install -y --no-install-recommends libpq5 \\\n && apt-get clean \\" in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "gcc" not in runtime and "pip --python" not in runtime
    for requirement, compiles in (("psycopg2-binary==2.9.9", False), ("psycopg2-binary", False),
                                  ("psycopg2==2.9.9", True), ("psycopg2-binary==2.9.4", True),
                                  ("psycopg2cffi==2.9.0", False), ("psycopg[binary]==3.2.3", False)):
        (tmp_path / "requirements.txt").write_text(f"Flask==3.0.3\ngunicorn==23.0.0\n{requirement}\n")
        (tmp_path / "main.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
        got = detect(tmp_path).plan
        assert got is not None and bool(got.build_packages) is compiles, requirement
        assert ("apt-get" in render_dockerfile(got)) is compiles, requirement

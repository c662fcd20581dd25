"""Generated files for the walking skeleton's stacks: readable, cache-friendly, non-root, valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.builder.compose import render_compose
from services.builder.dockerfile import render_dockerignore
from services.builder.generate import generate_files
from services.builder.plan import chosen_stack, plan_for
from services.detector.service import detect
from shared.config import Settings
from shared.detection import Detection
from shared.docker import Owner
from shared.docker.dockerfile import parse_dockerfile, read_dockerfile
from shared.docker.validate import validate_compose
from shared.errors import PortsideError
from shared.plan import cmd_json
from shared.secrets import generated_keys, open_generated, seal_generated
from tests.conftest import FIXTURE_REPOS


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) as the one Dockerfile reader sees them."""
    return [(i.line, i.keyword, i.args) for i in parse_dockerfile(text).instructions]


def _files(name: str, **kwargs):  # type: ignore[no-untyped-def]
    root = FIXTURE_REPOS / name
    return generate_files(detect(root), root, owner=Owner("portside", 7), repo_name=name, **kwargs)


def test_generate_flask_installs_requirements_before_copying_source() -> None:
    files = _files("python-flask")
    read_dockerfile(files.dockerfile)
    words = [(w, a) for _, w, a in dockerfile_instructions(files.dockerfile)]
    copy_requirements = words.index(("COPY", "requirements.txt ./"))
    install = next(i for i, (w, a) in enumerate(words) if w == "RUN" and "-r requirements.txt" in a)
    copy_all = next(i for i, (w, a) in enumerate(words) if w == "COPY" and a.endswith(". ."))
    assert copy_requirements < install < copy_all
    assert ("USER", "app") in words
    assert ("EXPOSE", "8000") in words
    assert words[0] == ("FROM", "python:3.11-slim")  # the default line: real on Debian, wheels for old pins
    assert any(w == "HEALTHCHECK" and "python" in a for w, a in words)
    assert "gunicorn" in files.dockerfile


def test_generate_express_uses_lockfile_exact_install_and_node_user() -> None:
    files = _files("node-express")
    read_dockerfile(files.dockerfile)
    assert "npm ci --omit=dev" in files.dockerfile
    assert "COPY package.json package-lock.json ./" in files.dockerfile
    assert "USER node" in files.dockerfile
    assert "EXPOSE 3000" in files.dockerfile


def test_generate_next_builds_in_a_separate_stage() -> None:
    files = _files("node-next")
    assert "AS build" in files.dockerfile
    assert "npm run build" in files.dockerfile
    assert "COPY --from=build" in files.dockerfile


def test_compose_publishes_host_port_from_environment_and_labels_everything() -> None:
    text = render_compose(owner=Owner("portside", 7), repo_name="demo", port=8000, services=[])
    doc = validate_compose(text)
    app = doc["services"]["app"]
    assert app["ports"] == ["${PORTSIDE_BIND_ADDRESS:-0.0.0.0}:${PORTSIDE_HOST_PORT:?Portside sets the host port}:8000"]
    assert app["labels"]["org.portside.deployment-id"] == "7"
    assert app["labels"]["org.portside.instance"] == "portside"
    assert doc["networks"]["default"]["name"] == "portside-7"
    assert "&id" not in text  # no YAML anchors in a file people edit


def test_compose_adds_postgres_with_healthcheck_and_a_generated_password_reference() -> None:
    text = render_compose(owner=Owner("portside", 1), repo_name="d", port=8000, services=["postgres"])
    doc = yaml.safe_load(text)
    db = doc["services"]["postgres"]
    assert doc["services"]["app"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    # No value in the file: a reference the runner fills from the deployment's encrypted store.
    reference = "${PORTSIDE_POSTGRES_PASSWORD:?Portside sets the generated password}"
    assert db["environment"]["POSTGRES_PASSWORD"] == reference
    assert doc["services"]["app"]["environment"]["DATABASE_URL"] == f"postgresql://app:{reference}@postgres:5432/app"
    both = render_compose(owner=Owner("portside", 1), repo_name="d", port=8000, services=["postgres", "mysql"])
    assert set(generated_keys(both)) == {
        "PORTSIDE_POSTGRES_PASSWORD", "PORTSIDE_MYSQL_PASSWORD", "PORTSIDE_MYSQL_ROOT_PASSWORD"}
    assert "postgres-data" in doc["volumes"]


def test_generated_passwords_are_made_once_and_kept_encrypted(tmp_path: Path) -> None:
    settings_in_tmp = Settings(home=tmp_path)
    text = render_compose(owner=Owner("portside", 1), repo_name="d", port=8000, services=["postgres"])
    sealed = seal_generated(settings_in_tmp, None, text)
    assert sealed is not None and b"PORTSIDE_POSTGRES_PASSWORD" not in sealed
    first = open_generated(settings_in_tmp, sealed)
    assert len(first["PORTSIDE_POSTGRES_PASSWORD"]) >= 20
    # A regenerate that adds redis and mysql keeps the database's password (its volume was initialised with it).
    more = render_compose(owner=Owner("portside", 1), repo_name="d", port=8000, services=["postgres", "mysql"])
    again = open_generated(settings_in_tmp, seal_generated(settings_in_tmp, sealed, more))
    assert again["PORTSIDE_POSTGRES_PASSWORD"] == first["PORTSIDE_POSTGRES_PASSWORD"]
    assert again["PORTSIDE_MYSQL_PASSWORD"] != again["PORTSIDE_MYSQL_ROOT_PASSWORD"]
    assert seal_generated(settings_in_tmp, None, "services: {app: {image: x}}\n") is None


def test_dockerignore_merges_gitignore_with_defaults(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("# comment\n/dist\nsecrets.txt\n.git\n")
    text = render_dockerignore(tmp_path)
    lines = text.splitlines()
    assert ".git" in lines and "**/node_modules" in lines and ".env" in lines
    assert "dist" in lines and "secrets.txt" in lines
    assert lines.count(".git") == 1


def test_plan_port_override_rewrites_the_start_command(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\ngunicorn==23.0.0\n")
    (tmp_path / "Procfile").write_text("web: gunicorn --bind 0.0.0.0:8000 app:app\n")
    detection = detect(tmp_path)
    assert detection.plan is not None and detection.plan.port == 8000
    plan = plan_for(detection, port_override=9000)
    assert plan.port == 9000
    assert plan.start_command == "gunicorn --bind 0.0.0.0:9000 app:app"


def test_plan_port_override_rewrites_the_port_in_the_script_npm_start_runs(tmp_path: Path) -> None:
    # The plan runs the script itself (`next start -p 4100`), not `npm start`: the port is rewritten there.
    (tmp_path / "package.json").write_text(
        '{"name": "x", "scripts": {"start": "next start -p 4100"}, "dependencies": {"next": "14.0.0"}}')
    detection = detect(tmp_path)
    assert detection.start_command == "npm start" and detection.plan is not None
    plan = plan_for(detection, port_override=5000)
    assert (plan.port, plan.start_command) == (5000, "next start -p 5000")
    php = tmp_path / "php"
    (php / "public").mkdir(parents=True)
    (php / "public" / "index.php").write_text("<?php echo 'hi';\n")
    (php / "composer.json").write_text("{}")
    plan = plan_for(detect(php), port_override=9001)
    assert (plan.port, plan.start_command) == (9001, "php -S 0.0.0.0:9001 -t public")


def test_a_monorepo_generated_as_another_stack_than_its_primary_app_is_refused_not_ignored() -> None:
    root = FIXTURE_REPOS / "monorepo-turbo"
    detection = detect(root)
    assert detection.primary_app and detection.stack == "node"
    # As the generate handler hands over a `stack` other than the detected one: no plan, and the sentence why.
    other = detection.model_copy(update={"stack": "python", "plan": None, "start_command_help": "generate as node"})
    with pytest.raises(PortsideError, match="generate as node") as err:
        generate_files(other, root, owner=Owner("portside", 7), repo_name="turbo")
    assert err.value.code == "UNSUPPORTED_STACK"


def test_plan_refuses_unknown_stack_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(PortsideError, match="add your own Dockerfile"):
        plan_for(Detection(stack="cobol"))


def test_plan_cmd_uses_shell_only_when_needed() -> None:
    exec_form = cmd_json("node server.js")
    shell_form = cmd_json("node server.js --port $PORT")
    assert exec_form == '["node", "server.js"]'
    assert shell_form == '["sh", "-c", "exec node server.js --port $PORT"]'


def test_a_cache_layer_removed_mid_build_is_recognised_for_one_retry() -> None:
    from services.builder.build import CACHE_LAYER_GONE

    assert CACHE_LAYER_GONE.search('COPY requirements.txt ./: unable to find image "sha256:6082b3bc2c2a18d6b7"')
    assert not CACHE_LAYER_GONE.search("pull access denied for evil/x")


def test_another_stack_found_in_the_repository_is_generated_by_its_own_providers_plan() -> None:
    root = FIXTURE_REPOS / "tricky-two-runtimes-no-manifest"
    detection = detect(root)
    assert detection.stack == "python" and "node" in detection.alternative_plans
    chosen = chosen_stack(detection, "node")
    assert (chosen.stack, chosen.start_command, chosen.plan) == ("node", "node server.js",
                                                                  detection.alternative_plans["node"])
    files = generate_files(chosen, root, owner=Owner("portside", 7), repo_name="two")
    assert 'CMD ["node", "server.js"]' in files.dockerfile and "FROM node:" in files.dockerfile
    # A stack the detector did not find here is refused, naming the stacks it can build instead.
    with pytest.raises(PortsideError, match="found no ruby app here.*`node`") as err:
        plan_for(chosen_stack(detection, "ruby"))
    assert err.value.code == "UNSUPPORTED_STACK"

"""The checks on every Dockerfile and compose file: each refusal has a code and names the offending line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.builder.compose import render_compose
from services.builder.own_files import pick_app_service, render_override
from shared.config import Settings
from shared.docker import Owner
from shared.docker.dockerfile import parse_dockerfile
from shared.docker.lint import hadolint_path
from shared.docker.policy import check_compose_policy, check_dockerfile_policy, image_registry
from shared.docker.validate import check_compose, check_dockerfile
from shared.errors import ErrorCode, PortsideError

ALLOWED = Settings().allowed_registries


def _refusal(text: str) -> PortsideError:
    with pytest.raises(PortsideError) as info:
        check_compose_policy(text, ALLOWED)
    assert info.value.code == ErrorCode.POLICY_VIOLATION
    return info.value


@pytest.mark.parametrize(
    ("snippet", "line", "fragment"),
    [
        ("    privileged: true\n", 4, "privileged"),
        ("    network_mode: host\n", 4, "network"),
        ("    pid: host\n", 4, "pid"),
        ("    ipc: host\n", 4, "ipc"),
        ("    cap_add: [NET_ADMIN]\n", 4, "capabilities"),
        ("    devices: ['/dev/kvm:/dev/kvm']\n", 4, "devices"),
        ("    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n", 5, "Docker socket"),
        ("    volumes:\n      - /etc:/host-etc:ro\n", 5, "host path `/etc`"),
        ("    volumes:\n      - ../../secrets:/s\n", 5, "host path"),
        ("    volumes:\n      - type: bind\n        source: /\n        target: /host\n", 5, "host path"),
        ("    security_opt: ['seccomp:unconfined']\n", 4, "confinement"),
    ],
)
def test_compose_policy_refuses_with_the_offending_line(snippet: str, line: int, fragment: str) -> None:
    text = "services:\n  app:\n    image: python:3.12-slim\n" + snippet
    error = _refusal(text)
    assert error.message.startswith(f"line {line}:"), error.message
    assert fragment in error.message


def test_compose_policy_refuses_images_from_other_registries() -> None:
    error = _refusal("services:\n  app:\n    image: evil.example.com/miner:1\n")
    assert error.message.startswith("line 3:") and "evil.example.com" in error.message


def test_compose_policy_allows_named_volumes_and_paths_inside_the_repository() -> None:
    check_compose_policy("services:\n  app:\n    image: nginx:stable\n    volumes: ['data:/d', './html:/h', 'x/y:/z']\n"
                         "volumes:\n  data: {}\n", ALLOWED)


def test_dockerfile_policy_checks_every_base_image_but_not_stage_names() -> None:
    text = (
        "ARG BASE=python:3.12-slim\nFROM ${BASE} AS build\nRUN echo\nFROM build\nFROM quay.io/x/y:1\nFROM evil.io/x:1\n"
    )
    with pytest.raises(PortsideError) as info:
        check_dockerfile_policy(parse_dockerfile(text), ALLOWED)
    assert info.value.code == ErrorCode.POLICY_VIOLATION and info.value.message.startswith("line 6:")


def test_dockerfile_policy_refuses_from_a_variable_without_default() -> None:
    with pytest.raises(PortsideError, match="variable without a value"):
        check_dockerfile_policy(parse_dockerfile("ARG IMG\nFROM $IMG\n"), ALLOWED)


def test_image_registry_reads_docker_hub_short_names() -> None:
    assert image_registry("python:3.12-slim") == "docker.io"
    assert image_registry("louislam/uptime-kuma:1") == "docker.io"
    assert image_registry("mcr.microsoft.com/dotnet/aspnet:8.0") == "mcr.microsoft.com"
    assert image_registry("localhost:5000/x") == "localhost:5000"


@pytest.mark.skipif(hadolint_path() is None, reason="hadolint is not installed")
def test_hadolint_errors_block_generated_files_and_only_warn_on_own_files() -> None:
    warnings = check_dockerfile("FROM python:3.12-slim\nRUN apt-get update && apt-get install -y curl\nUSER app\n"
                                'CMD ["python"]\n', ALLOWED)
    assert any("DL3008" in w for w in warnings) and all(w.startswith("line ") for w in warnings)
    with pytest.raises(PortsideError) as info:
        check_dockerfile("FROM python:3.12-slim\nWORKDIR app\nUSER app\n", ALLOWED, strict_lint=True)
    assert (
        info.value.code == ErrorCode.LINT_FAILED and "line 2" in info.value.message and "DL3000" in info.value.message
    )
    # A repository's or a user's own file: the same finding is a warning, never a refusal.
    own = check_dockerfile("FROM python:3.12-slim\nWORKDIR app\nUSER app\n", ALLOWED)
    assert any("DL3000" in w for w in own)


def test_check_compose_runs_docker_compose_config(tmp_path: Path) -> None:
    with pytest.raises(PortsideError) as info:
        check_compose(Settings(), "services:\n  app:\n    image: nginx:stable\n    depends_on: [missing]\n",
                      owner=Owner("p", 1), repo_root=tmp_path, app_dir=tmp_path)
    assert info.value.code == ErrorCode.INVALID_COMPOSE and "docker compose" in info.value.message
    check_compose(Settings(), render_compose(owner=Owner("p", 1), repo_name="r", port=80, services=["redis"]),
                  owner=Owner("p", 1), repo_root=tmp_path, app_dir=tmp_path)


def test_override_publishes_the_app_and_labels_their_services(tmp_path: Path) -> None:
    theirs = ("services:\n  web:\n    build: .\n    ports: ['8000:8000']\n    container_name: fixed\n"
              "  db:\n    image: postgres:16\n    ports: ['5432:5432']\nvolumes:\n  pg: {}\n")
    (tmp_path / "docker-compose.yml").write_text(theirs)
    override = render_override(Owner("p", 9), "docker-compose.yml", theirs, None)
    assert (override.app_service, override.port) == ("web", 8000)
    assert "ports: !override" in override.text and "ports: !reset []" in override.text
    assert "container_name: !reset" in override.text
    doc = yaml.safe_load(override.text.replace("!override", "").replace("!reset", ""))
    assert doc["services"]["db"]["labels"]["org.portside.deployment-id"] == "9"
    assert doc["volumes"]["pg"]["labels"]["org.portside.instance"] == "p"
    assert doc["networks"]["default"]["name"] == "p-9"
    # Compose itself accepts the pair, and the policy checks their file too.
    checked = check_compose(
        Settings(),
        override.text,
        app_service="web",
        app_dir=tmp_path,
        before=["docker-compose.yml"],
        owner=Owner("p", 9),
        repo_root=tmp_path,
    )
    # Only the assigned host port stays published; the database's fixed port is gone from what runs.
    assert "ports" not in checked.model["services"]["db"] or checked.model["services"]["db"]["ports"] == []
    assert [p["published"] for p in checked.model["services"]["web"]["ports"]] == ["20000"]
    (tmp_path / "docker-compose.yml").write_text(
        theirs.replace("image: postgres:16", "image: postgres:16\n    privileged: true")
    )
    with pytest.raises(PortsideError, match="docker-compose.yml: line 8"):
        check_compose(Settings(), override.text, app_service="web", app_dir=tmp_path, before=["docker-compose.yml"],
                      owner=Owner("p", 9), repo_root=tmp_path)


def test_pick_app_service_prefers_the_one_built_from_the_repository() -> None:
    doc = {
        "services": {
            "db": {"image": "postgres", "ports": ["5432"]},
            "api": {"build": {"context": "."}, "expose": ["9000"]},
        }
    }
    assert pick_app_service(doc, 3000) == ("api", 9000)
    assert pick_app_service({"services": {"a": {"image": "x"}}}, 3000) == ("a", 3000)

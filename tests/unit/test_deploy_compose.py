"""deploy/compose.yaml keeps the promises the README makes about it (read as YAML, no engine needed)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
PORTSIDE = ("api", "logstream", "detector", "builder", "runner")
HOME = "${PORTSIDE_HOME:-/var/lib/portside}"
SOCKET = "/var/run/docker.sock:/var/run/docker.sock"


def test_deploy_compose_mounts_portside_home_at_the_same_path_everywhere() -> None:
    for name in (*PORTSIDE, "setup"):
        assert f"{HOME}:{HOME}" in SERVICES[name]["volumes"], name
        assert SERVICES[name]["environment"]["PORTSIDE_HOME"] == HOME, name


def test_deploy_compose_gives_the_docker_socket_only_to_services_that_drive_the_engine() -> None:
    with_socket = {name for name, svc in SERVICES.items() if SOCKET in svc.get("volumes", [])}
    assert with_socket == {"api", "logstream", "builder", "runner"}


def test_deploy_compose_runner_probes_apps_on_the_host() -> None:
    runner = SERVICES["runner"]
    assert runner["environment"]["PORTSIDE_PROBE_HOST"] == "host.docker.internal"
    assert "host.docker.internal:host-gateway" in runner["extra_hosts"]


def test_deploy_compose_long_running_services_have_health_checks_and_restart() -> None:
    for name, svc in SERVICES.items():
        if name in ("setup", "migrate"):
            assert svc["restart"] == "no", name
            continue
        assert svc["restart"] == "unless-stopped", name
        assert svc["healthcheck"]["test"][:3] == ["CMD", "portside-entrypoint", "health"], name


def test_deploy_compose_workers_scale_with_replicas_from_the_env() -> None:
    for name in ("detector", "builder", "runner"):
        assert re.fullmatch(r"\$\{PORTSIDE_\w+S:-1\}", str(SERVICES[name]["deploy"]["replicas"])), name


def test_deploy_compose_services_wait_for_migrations_and_a_healthy_nats() -> None:
    for name in PORTSIDE:
        depends = SERVICES[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["nats"]["condition"] == "service_healthy", name
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_deploy_env_example_names_every_variable_the_compose_file_reads() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text)) - {"PORTSIDE_ENV_FILE"}
    example = (ROOT / "deploy" / ".env.example").read_text()
    assert all(re.search(rf"^#? ?{name}=", example, re.MULTILINE) for name in used), used


def test_deploy_compose_api_and_logstream_replicas_sit_behind_the_proxy() -> None:
    for name in ("api", "logstream"):
        assert re.fullmatch(r"\$\{PORTSIDE_\w+S:-2\}", str(SERVICES[name]["deploy"]["replicas"])), name
        assert "ports" not in SERVICES[name], name  # a fixed host port would refuse a second replica
    assert SERVICES["proxy"]["ports"] == ["${PORTSIDE_API_PUBLISH:-127.0.0.1:8080}:8080"]
    assert SERVICES["api"]["environment"]["PORTSIDE_LOGSTREAM_HOST"] == "proxy"
    # Behind the proxy every request comes from its address: the per-address limits read X-Forwarded-For.
    assert SERVICES["api"]["environment"]["PORTSIDE_TRUST_FORWARDED_FOR"] == "true"
    assert "volumes" not in SERVICES["proxy"]  # no socket, no secrets

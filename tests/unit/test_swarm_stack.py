"""The Swarm stack file the runner renders from a checked, resolved model: Swarm's own keys added (replicas,
limits, placement, the start-first health-gated update with rollback), nothing the policy did not check."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.builder.compose import render_compose
from services.runner.swarm import EDGE_PREFIX, crash_loop, edge_image_tag, render_stack, service_state, uses_edge
from shared.config import Settings
from shared.docker import LABEL_DEPLOYMENT, Owner
from shared.docker.validate import check_compose
from shared.errors import ErrorCode, PortsideError

SETTINGS = Settings(engine="swarm", registry="127.0.0.1:5000", swarm_monitor_seconds=4)


def resolved() -> dict:
    """A model as `docker compose config --format json` prints the generated compose file of a deployment."""
    return {
        "name": "portside-1",
        "services": {
            "app": {
                "build": {"context": "/repo", "dockerfile": ".deployment/Dockerfile"},
                "image": "127.0.0.1:5000/portside/portside-deployment-1:17", "restart": "unless-stopped",
                "security_opt": ["no-new-privileges:true"], "labels": {"x": "y"},
                "environment": {"PORT": "8000", "SECRET": "p$$w"}, "entrypoint": None, "command": None,
                "ports": [{"mode": "ingress", "host_ip": "0.0.0.0", "target": 8000, "published": "20001",
                           "protocol": "tcp"}],
                "networks": {"default": None},
                "depends_on": {"redis": {"condition": "service_healthy"}},
                "deploy": {"replicas": 2, "resources": {"limits": {"cpus": 0.5, "memory": "536870912"}},
                           "placement": {"constraints": ["node.labels.zone == b"]}},
            },
            "redis": {
                "image": "redis:7", "networks": {"default": None},
                "volumes": [{"type": "volume", "source": "redis-data", "target": "/data"},
                            {"type": "bind", "source": "/repo/conf", "target": "/conf"}],
                "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "5s", "retries": 20},
            },
        },
        "networks": {"default": {"name": "portside-1", "labels": {"x": "y"}}},
        "volumes": {"redis-data": {"name": "portside-1_redis-data"}},
    }


def test_swarm_stack_has_the_health_gated_start_first_update_with_rollback() -> None:
    stack, _ = render_stack(resolved(), SETTINGS, Owner.of(SETTINGS, 1), "app")
    app = stack["services"]["app"]
    assert app["deploy"]["update_config"] == {"parallelism": 1, "order": "start-first", "failure_action": "rollback",
                                              "monitor": "4s", "max_failure_ratio": 0}
    assert app["deploy"]["replicas"] == 2
    assert app["deploy"]["resources"] == {"limits": {"cpus": "0.5", "memory": "536870912"}}
    assert app["deploy"]["placement"] == {"constraints": ["node.labels.zone == b"]}
    assert app["ports"] == [{"target": 8000, "published": 20001, "protocol": "tcp", "mode": "ingress"}]
    # Readiness is a health check inside the task, on the app's own port.
    assert app["healthcheck"]["test"][0] == "CMD-SHELL" and "127.0.0.1', 8000" in app["healthcheck"]["test"][1]
    assert app["deploy"]["labels"]["org.portside.deployment-id"] == "1" and app["labels"]["x"] == "y"
    assert stack["networks"]["default"]["driver"] == "overlay"


def test_swarm_stack_keeps_only_what_the_policy_checked_and_says_what_it_left_out() -> None:
    stack, warnings = render_stack(resolved(), SETTINGS, Owner.of(SETTINGS, 1), "app")
    app, redis = stack["services"]["app"], stack["services"]["redis"]
    assert "build" not in app and "restart" not in app and "depends_on" not in app
    assert any("security_opt" in w for w in warnings)
    # A host path exists on one node only; a database swaps stop-first (two tasks on one volume must not overlap).
    assert redis["volumes"] == [{"type": "volume", "source": "redis-data", "target": "/data"}]
    assert any("/repo/conf" in w for w in warnings)
    assert redis["deploy"]["update_config"]["order"] == "stop-first"
    # The backing service keeps its own health check; none is invented for a service without a published port.
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert app["environment"]["SECRET"] == "p$$w"  # already escaped by Compose: not escaped twice


def test_swarm_stack_is_a_file_docker_stack_accepts() -> None:
    """`docker stack config` (client side, no engine) parses it with Swarm's own schema."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("the docker command line client is needed (`make docker` installs it)")
    stack, _ = render_stack(resolved(), SETTINGS, Owner.of(SETTINGS, 1), "app")
    out = subprocess.run([docker, "stack", "config", "-c", "-"], input=json.dumps(stack), capture_output=True,
                         text=True, timeout=60, env={"DOCKER_HOST": "unix:///nonexistent", "PATH": "/usr/bin:/bin"},
                         check=False)
    assert out.returncode == 0, out.stderr
    parsed = yaml.safe_load(out.stdout)
    assert parsed["services"]["app"]["environment"]["SECRET"] == "p$w"
    assert parsed["services"]["app"]["deploy"]["update_config"]["order"] == "start-first"


EDGE = "127.0.0.1:5000/portside/edge:abc"


def test_swarm_stack_with_the_edge_publishes_the_port_on_the_managers_in_host_mode_and_no_vip() -> None:
    stack, _ = render_stack(resolved(), SETTINGS, Owner.of(SETTINGS, 1), "app", EDGE)
    app, redis = stack["services"]["app"], stack["services"]["redis"]
    # No IPVS: nothing on the mesh, and names resolve to the tasks themselves (also redis for the app).
    assert "ports" not in app and app["deploy"]["endpoint_mode"] == "dnsrr"
    assert redis["deploy"]["endpoint_mode"] == "dnsrr"
    assert app["healthcheck"]["test"][0] == "CMD-SHELL"  # readiness is still checked inside the app's task
    edge = stack["services"][f"{EDGE_PREFIX}20001"]
    assert edge["image"] == EDGE
    assert edge["ports"] == [{"target": 20001, "published": 20001, "protocol": "tcp", "mode": "host"}]
    assert edge["environment"] == {"PORTSIDE_EDGE_PORT": "20001", "PORTSIDE_EDGE_UPSTREAM": "app",
                                   "PORTSIDE_EDGE_UPSTREAM_PORT": "8000"}
    assert edge["deploy"]["mode"] == "global"
    assert edge["deploy"]["placement"] == {"constraints": ["node.role == manager"]}
    assert edge["networks"] == app["networks"] == ["default"]
    assert edge["labels"]["org.portside.edge"] == "app" and edge["deploy"]["labels"]["org.portside.edge"] == "app"
    assert edge["labels"][LABEL_DEPLOYMENT] == "1"
    assert set(stack["services"]) == {"app", "redis", f"{EDGE_PREFIX}20001"}


def test_swarm_stack_with_the_edge_is_a_file_docker_stack_accepts() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.fail("the docker command line client is needed (`make docker` installs it)")
    stack, _ = render_stack(resolved(), SETTINGS, Owner.of(SETTINGS, 1), "app", EDGE)
    out = subprocess.run([docker, "stack", "config", "-c", "-"], input=json.dumps(stack), capture_output=True,
                         text=True, timeout=60, env={"DOCKER_HOST": "unix:///nonexistent", "PATH": "/usr/bin:/bin"},
                         check=False)
    assert out.returncode == 0, out.stderr
    parsed = yaml.safe_load(out.stdout)
    assert parsed["services"][f"{EDGE_PREFIX}20001"]["ports"][0]["mode"] == "host"


def test_swarm_stack_refuses_a_service_named_like_the_edge() -> None:
    model = resolved()
    model["services"][f"{EDGE_PREFIX}20001"] = model["services"].pop("redis")
    with pytest.raises(PortsideError) as caught:
        render_stack(model, SETTINGS, Owner.of(SETTINGS, 1), "app", EDGE)
    assert caught.value.code == ErrorCode.POLICY_VIOLATION and EDGE_PREFIX in caught.value.message


def test_swarm_publish_setting_picks_the_mesh_or_the_edge() -> None:
    assert uses_edge(SETTINGS.model_copy(update={"swarm_publish": "edge"}))
    assert not uses_edge(SETTINGS.model_copy(update={"swarm_publish": "mesh"}))
    assert uses_edge(SETTINGS) == (not Path("/proc/net/ip_vs").exists())
    tag = edge_image_tag(SETTINGS)
    assert tag.startswith("127.0.0.1:5000/portside/edge:") and tag == edge_image_tag(SETTINGS)


def test_swarm_engine_without_a_registry_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="PORTSIDE_REGISTRY"):
        Settings(engine="swarm")
    assert Owner.of(Settings(), 3).image_repo == "portside/portside-deployment-3"  # the single engine: local only
    assert Owner.of(SETTINGS, 3).image_repo == "127.0.0.1:5000/portside/portside-deployment-3"


def test_swarm_stack_from_a_generated_file_keeps_the_replicas_placement_and_limits_the_user_set(
    tmp_path: Path,
) -> None:
    """The whole path the runner takes: Portside's compose file (edited: replicas and a placement constraint),
    checked and resolved by `docker compose config`, then rendered for Swarm."""
    owner = Owner.of(SETTINGS, 4)
    doc = yaml.safe_load(render_compose(owner=owner, repo_name="r", port=8000, services=["redis"], cpus=0.5,
                                        memory="256m"))
    doc["services"]["app"]["deploy"].update({"replicas": 3, "placement": {"constraints": ["node.role == worker"]}})
    checked = check_compose(SETTINGS, yaml.safe_dump(doc), owner=owner, repo_root=tmp_path, app_dir=tmp_path)
    stack, _ = render_stack(checked.model, SETTINGS, owner, "app")
    app = stack["services"]["app"]
    assert app["deploy"]["replicas"] == 3
    assert app["deploy"]["placement"] == {"constraints": ["node.role == worker"]}
    assert app["deploy"]["resources"]["limits"]["cpus"] == "0.5"
    assert app["ports"][0]["mode"] == "ingress" and app["ports"][0]["target"] == 8000
    assert stack["services"]["redis"]["deploy"]["update_config"]["order"] == "stop-first"


def _task(image: str, state: str, when: str, code: int | None = None, err: str | None = None,
          desired: str | None = None) -> dict:
    """A task as the engine lists it (the keys the crash rule reads)."""
    status: dict = {"State": state, "Timestamp": when, "Err": err}
    if code is not None:
        status["ContainerStatus"] = {"ExitCode": code}
    return {"Spec": {"ContainerSpec": {"Image": f"{image}@sha256:{'a' * 64}"}}, "Status": status,
            "DesiredState": desired or ("running" if state == "running" else "shutdown")}


def test_swarm_crash_rule_counts_exits_of_the_current_image_up_to_the_single_engines_limit() -> None:
    new, old = "reg/portside/i-deployment-1:20", "reg/portside/i-deployment-1:10"
    tasks = [
        _task(old, "failed", "2026-11-29T09:00:00Z", 1, "task: non-zero exit (1)"),  # an earlier version's
        _task(new, "failed", "2026-11-29T10:00:01Z", 3, "task: non-zero exit (3)"),
        _task(new, "complete", "2026-11-29T10:00:05Z", 0),
        _task(new, "running", "2026-11-29T10:00:09Z"),  # a replacement runs right now
    ]
    assert crash_loop(SETTINGS, tasks, new) is None  # two exits: Swarm restarting it is still "restarting"
    tasks.append(_task(new, "failed", "2026-11-29T10:00:07Z", 3, "task: non-zero exit (3)"))
    crashed = crash_loop(SETTINGS, tasks, new)
    assert crashed is not None and (crashed.state, crashed.exit_code) == ("crashed", 3)
    assert crashed.reason and "3 times" in crashed.reason and "non-zero exit (3)" in crashed.reason
    assert crash_loop(SETTINGS.model_copy(update={"crash_restart_limit": 4}), tasks, new) is None


def test_a_replacement_waiting_out_the_restart_delay_is_restarting_not_gone() -> None:
    # Between an exit and its replacement's start (restart_policy delay), Swarm's only live task wants `ready`,
    # not `running`. Read as "gone", the reconciler marked the app crashed with no exit code before the crash rule.
    new = "reg/portside/i-deployment-1:20"
    tasks = [_task(new, "failed", "2026-11-29T10:00:01Z", 3, "task: non-zero exit (3)"),
             _task(new, "new", "2026-11-29T10:00:02Z", desired="ready")]
    assert service_state(SETTINGS, tasks, new).state == "restarting"
    assert service_state(SETTINGS, tasks[:1], new).state == "gone"
    tasks.append(_task(new, "running", "2026-11-29T10:00:04Z"))
    assert service_state(SETTINGS, tasks, new).state == "running"

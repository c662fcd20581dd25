"""The allowlist on the model Compose resolves: every dangerous key in any spelling is refused, host paths must
stay in the checkout, and only the assigned host port survives. Property tests generate compose models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.builder.values import comment, single_line
from shared.docker.resolved import REFUSED_SERVICE_KEYS, Scope, check_model
from shared.errors import ErrorCode, PortsideError
from shared.outbound import address_is_public, check_url, redact_url
from shared.source import SourceTree, YamlTooLarge, bounded_yaml


def scope(root: Path) -> Scope:
    return Scope(root, "p-1", "app", 20001, "127.0.0.1", ("docker.io",), "portside/p-deployment-1")


def model(**service: object) -> dict:
    return {"services": {"app": {"image": "python:3.12-slim", **service}}, "networks": {"default": {"name": "p-1"}}}


def refused(root: Path, doc: dict) -> PortsideError:
    with pytest.raises(PortsideError) as info:
        check_model(doc, scope(root))
    return info.value


@pytest.mark.parametrize(("key", "value"), [
    ("privileged", True), ("privileged", "TRUE"), ("network_mode", "host"), ("network_mode", "container:x"),
    ("network_mode", "bridge"), ("pid", "host"), ("ipc", "host"), ("uts", "host"), ("userns_mode", "host"),
    ("cgroup", "host"), ("security_opt", ["apparmor=unconfined"]), ("security_opt", ["label=disable"]),
    ("sysctls", {"kernel.core_pattern": "|/x"}), ("logging", {"driver": "syslog"}), ("oom_score_adj", -900),
    ("frobnicate", 1),
])
def test_service_keys_outside_the_allowlist_are_refused_with_the_key(tmp_path: Path, key: str, value: object) -> None:
    error = refused(tmp_path, model(**{key: value}))
    assert error.code == ErrorCode.POLICY_VIOLATION and f"services.app.{key}" in error.message


@pytest.mark.parametrize("key", sorted(REFUSED_SERVICE_KEYS))
def test_every_refused_key_is_refused(tmp_path: Path, key: str) -> None:
    assert refused(tmp_path, model(**{key: ["x"]})).code == ErrorCode.POLICY_VIOLATION


def test_binds_secrets_and_build_contexts_must_resolve_inside_the_checkout(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    os.symlink("/etc", tmp_path / "etc-link")
    check_model(model(volumes=[{"type": "bind", "source": str(tmp_path / "data"), "target": "/d"}]), scope(tmp_path))
    for source in ("/etc", str(tmp_path / "etc-link"), str(tmp_path / ".." / "x")):
        doc = model(volumes=[{"type": "bind", "source": source, "target": "/d"}])
        assert refused(tmp_path, doc).code == ErrorCode.PATH_OUTSIDE_REPOSITORY
    doc = model(build={"context": str(tmp_path / "etc-link")})
    assert refused(tmp_path, doc).code == ErrorCode.PATH_OUTSIDE_REPOSITORY
    doc = model(build={"context": str(tmp_path), "ssh": ["default"]})
    assert "build.ssh" in refused(tmp_path, doc).message
    doc = {**model(secrets=[{"source": "s"}]), "secrets": {"s": {"file": "/etc/shadow"}}}
    assert refused(tmp_path, doc).code == ErrorCode.PATH_OUTSIDE_REPOSITORY
    doc = {**model(secrets=[{"source": "s"}]), "secrets": {"s": {"environment": "PORTSIDE_DATABASE_URL"}}}
    assert "secrets.s" in refused(tmp_path, doc).message


def test_only_the_assigned_host_port_is_published(tmp_path: Path) -> None:
    doc = model(ports=[{"target": 8000, "published": "20001", "host_ip": "127.0.0.1"},
                       {"target": 22, "published": "2222"}, {"target": 9000}])
    doc["services"]["db"] = {"image": "postgres:16", "ports": [{"target": 5432, "published": "5432"}]}
    checked = check_model(doc, scope(tmp_path))
    assert checked.model["services"]["app"]["ports"] == [{"target": 8000, "published": "20001", "host_ip": "127.0.0.1"}]
    assert checked.model["services"]["db"]["ports"] == []
    assert len(checked.warnings) == 2 and "2222" in checked.warnings[0]


def test_networks_and_volumes_must_be_the_deployments_own(tmp_path: Path) -> None:
    for doc in ({**model(), "networks": {"default": {"name": "host", "external": True}}},
                {**model(), "networks": {"default": {"name": "p-2"}}},
                {**model(), "networks": {"default": {"driver": "macvlan"}}},
                {**model(), "volumes": {"db": {"name": "p-2_db"}}},
                {**model(), "volumes": {"db": {"driver_opts": {"device": "/", "o": "bind"}}}},
                model(volumes=[{"type": "volume", "source": "theirs", "target": "/d"}])):
        assert refused(tmp_path, doc).code == ErrorCode.POLICY_VIOLATION


DANGEROUS = st.sampled_from(
    [
        ("privileged", st.sampled_from([True, "true", "True", "TRUE", "1", "yes", "on"])),
        ("cap_add", st.lists(st.sampled_from(["SYS_ADMIN", "NET_ADMIN", "ALL"]), min_size=1)),
        ("network_mode", st.sampled_from(["host", "bridge", "container:db", "service:db"])),
        ("pid", st.sampled_from(["host", "container:x"])),
        ("devices", st.lists(st.just("/dev/sda:/dev/sda"), min_size=1)),
        (
            "volumes",
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.just("bind"),
                        "target": st.just("/x"),
                        "source": st.sampled_from(["/", "/etc", "/var/run/docker.sock", "/root/.ssh", "/proc"]),
                    }
                ),
                min_size=1,
            ),
        ),
    ]
)
HARMLESS = st.dictionaries(st.sampled_from(["command", "environment", "working_dir", "user", "restart", "init", "tty"]),
                           st.text(max_size=20), max_size=4)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(harmless=HARMLESS, dangerous=DANGEROUS.flatmap(lambda kv: st.tuples(st.just(kv[0]), kv[1])),
       service=st.sampled_from(["app", "db", "worker"]))
def test_property_a_dangerous_key_in_any_service_is_always_refused(
    tmp_path: Path, harmless: dict, dangerous: tuple[str, object], service: str
) -> None:
    key, value = dangerous
    doc = model(**harmless)
    doc["services"].setdefault(service, {"image": "redis:7"})[key] = value
    with pytest.raises(PortsideError) as info:
        check_model(doc, scope(tmp_path))
    assert info.value.code in (ErrorCode.POLICY_VIOLATION, ErrorCode.PATH_OUTSIDE_REPOSITORY)
    assert f"services.{service}" in info.value.message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(harmless=HARMLESS)
def test_property_harmless_services_pass_unchanged(tmp_path: Path, harmless: dict) -> None:
    doc = model(**harmless)
    assert check_model(doc, scope(tmp_path)).model == doc


# ---- values, URLs, files, YAML ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["20\nUSER root", "a\rb", "dist \\", "x`", "a\u2028b", "\x00"])
def test_a_repository_value_that_could_add_an_instruction_is_refused(value: str) -> None:
    with pytest.raises(PortsideError) as info:
        single_line(value)
    assert info.value.code == ErrorCode.POLICY_VIOLATION


def test_comment_values_stay_on_one_line() -> None:
    assert "\n" not in comment("repo\nservices:\n  evil: {}")


def test_urls_with_credentials_are_split_and_redacted() -> None:
    target = check_url("https://bot:tok3n@8.8.8.8/org/app.git", schemes=("https",), allow_private=False)
    assert target.url == "https://8.8.8.8/org/app.git" and target.password == "tok3n"
    assert redact_url("fatal: https://bot:tok3n@host/x") == "fatal: https://***@host/x"
    assert not address_is_public("169.254.169.254") and not address_is_public("::ffff:10.0.0.1")


def test_writes_never_follow_a_symlink_or_a_hard_link(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    os.symlink(outside, repo / ".deployment")
    with pytest.raises(OSError):
        SourceTree(repo).write_text(".deployment/Dockerfile", "x")
    assert list(outside.iterdir()) == []
    (repo / ".deployment").unlink()
    (repo / ".deployment").mkdir()
    (outside / "victim").write_text("keep")
    os.link(outside / "victim", repo / ".deployment" / "Dockerfile")
    SourceTree(repo).write_text(".deployment/Dockerfile", "new", mode=0o600)
    assert (outside / "victim").read_text() == "keep" and (repo / ".deployment" / "Dockerfile").read_text() == "new"


def test_yaml_aliases_are_bounded() -> None:
    bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]\n" for i in range(6))
    with pytest.raises(YamlTooLarge):
        bounded_yaml(bomb)
    assert bounded_yaml("a: &x {k: v}\nb: *x\n") == {"a": {"k": "v"}, "b": {"k": "v"}}

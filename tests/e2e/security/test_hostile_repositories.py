"""A hostile repository gets nothing from the host. Each test builds a small repository that tries one escape,
commits it with real git (symlinks included), registers it through the real API (a file:// clone, or the local
path), and shows that Portside refuses it with a code naming the key or line, or runs it with nothing from the
host, as `docker inspect` shows. Nothing is left behind on the engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import pytest

from tests.support import System

RUN_APP = (
    "services:\n"
    "  app:\n"
    "    image: python:3.12-slim\n"
    "    command: [\"python3\", \"-m\", \"http.server\", \"8000\"]\n"
    "    ports: [\"8000:8000\"]\n"
)


def make_repo(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    """A git repository with `files` and symlinks `links` (name -> target), committed."""
    root.mkdir(parents=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for name, target in (links or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@portside.invalid", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "-A"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "hostile"], cwd=root, check=True)
    return root


def register(system: System, root: Path, clone: bool = True) -> int:
    body = {"url": f"file://{root}", "branch": "main"} if clone else {"path": str(root)}
    return system.call("POST", "/api/repositories", json=body)["data"]["id"]


def generate(system: System, repo_id: int, expect: int | tuple[int, ...] = 200) -> dict:
    return system.call("POST", f"/api/deployments/generate/{repo_id}", json={}, expect=expect)


def assert_refused(body: dict, code: str, *fragments: str) -> None:
    assert body.get("error_code") == code, body
    for fragment in fragments:
        assert fragment in body["detail"], body


def no_containers(system: System, engine: docker.DockerClient) -> None:
    label = {"label": f"org.portside.instance={system.instance}"}
    running = [c.name for c in engine.containers.list(filters=label)]
    assert running == [], running


# ---- compose escapes: refused at generate, before anything runs ----------------------------------------------

HOSTILE_COMPOSE = {
    "privileged-from-dotenv": (
        {"compose.yaml": RUN_APP + "    privileged: ${PRIV:-false}\n", ".env": "PRIV=TRUE\n"},
        {},
        "POLICY_VIOLATION",
        "services.app.privileged",
    ),
    "privileged-from-interpolation-default": (
        {"compose.yaml": RUN_APP + "    privileged: ${NOT_SET:-true}\n"},
        {},
        "POLICY_VIOLATION",
        "privileged",
    ),
    "host-network-through-include": (
        {
            "compose.yaml": "include:\n  - extra/more.yaml\n" + RUN_APP,
            "extra/more.yaml": "services:\n  sidecar:\n    image: python:3.12-slim\n    network_mode: host\n",
        },
        {},
        "POLICY_VIOLATION",
        "services.sidecar.network_mode",
    ),
    "capabilities-through-extends": (
        {
            "compose.yaml": RUN_APP + "    extends:\n      file: base.yaml\n      service: base\n",
            "base.yaml": "services:\n  base:\n    image: python:3.12-slim\n    cap_add: [SYS_ADMIN]\n",
        },
        {},
        "POLICY_VIOLATION",
        "cap_add",
    ),
    "pid-host-spelled-with-interpolation": (
        {"compose.yaml": RUN_APP + "    pid: ${MODE:-host}\n"},
        {},
        "POLICY_VIOLATION",
        "services.app.pid",
    ),
    "docker-socket-bind": (
        {"compose.yaml": RUN_APP + '    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]\n'},
        {},
        "POLICY_VIOLATION",
        "Docker socket",
    ),
    "host-root-bind-via-symlink": (
        {"compose.yaml": RUN_APP + '    volumes: ["./data:/host"]\n'},
        {"data": "/"},
        "PATH_OUTSIDE_REPOSITORY",
        "volumes",
    ),
    "secret-file-outside": (
        {"compose.yaml": RUN_APP + "    secrets: [s]\nsecrets:\n  s:\n    file: /etc/hostname\n"},
        {},
        "PATH_OUTSIDE_REPOSITORY",
        "secrets.s.file",
    ),
    "secret-file-symlinked-out": (
        {"compose.yaml": RUN_APP + "    secrets: [s]\nsecrets:\n  s:\n    file: ./s.txt\n"},
        {"s.txt": "/etc/hostname"},
        "PATH_OUTSIDE_REPOSITORY",
        "secrets.s.file",
    ),
    "env-file-symlinked-out": (
        {"compose.yaml": RUN_APP + "    env_file: [./app.env]\n"},
        {"app.env": "/etc/os-release"},
        "PATH_OUTSIDE_REPOSITORY",
        "env_file",
    ),
    "dotenv-symlinked-out": ({"compose.yaml": RUN_APP}, {".env": "/etc/os-release"}, "PATH_OUTSIDE_REPOSITORY", ".env"),
    "dotenv-steering-compose": (
        {"compose.yaml": RUN_APP, ".env": "COMPOSE_FILE=/etc/compose.yaml\n"},
        {},
        "POLICY_VIOLATION",
        "COMPOSE_FILE",
    ),
    "include-outside-the-repository": (
        {"compose.yaml": "include:\n  - ../../../../etc/compose.yaml\n" + RUN_APP},
        {},
        "PATH_OUTSIDE_REPOSITORY",
        "leaves the repository",
    ),
    "external-host-network": (
        {"compose.yaml": RUN_APP + "networks:\n  default:\n    name: host\n    external: true\n"},
        {},
        "POLICY_VIOLATION",
        "networks.default",
    ),
    "another-deployments-volume": (
        {"compose.yaml": RUN_APP + '    volumes: ["db:/data"]\nvolumes:\n  db:\n    name: portside-1_pgdata\n'},
        {},
        "POLICY_VIOLATION",
        "volumes.db.name",
    ),
    "devices": (
        {"compose.yaml": RUN_APP + '    devices: ["/dev/kmsg:/dev/kmsg"]\n'},
        {},
        "POLICY_VIOLATION",
        "devices",
    ),
    "unconfined-seccomp": (
        {"compose.yaml": RUN_APP + '    security_opt: ["seccomp=unconfined"]\n'},
        {},
        "POLICY_VIOLATION",
        "seccomp",
    ),
    "image-from-an-unlisted-registry-by-interpolation": (
        {"compose.yaml": RUN_APP.replace("python:3.12-slim", "${REG:-evil.example.com}/x:1")},
        {},
        "POLICY_VIOLATION",
        "evil.example.com",
    ),
    "build-arg-overrides-the-base-image": (
        {
            "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args:\n"
            "        BASE: evil.example.com/py:1\n"
            '    ports: ["8000:8000"]\n',
            "Dockerfile": 'ARG BASE=python:3.12-slim\nFROM ${BASE}\nCMD ["python3", "-m", "http.server"]\n',
        },
        {},
        "POLICY_VIOLATION",
        "evil.example.com",
    ),
    "yaml-alias-bomb": (
        {
            "compose.yaml": "x: &a [1,1,1,1,1,1,1,1,1,1]\n"
            + "".join(f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(7))
            + RUN_APP
        },
        {},
        "INVALID_COMPOSE",
        "aliases",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_COMPOSE), ids=list(HOSTILE_COMPOSE))
def test_hostile_compose_is_refused_with_the_key_and_nothing_runs(
    case: str, system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    files, links, code, fragment = HOSTILE_COMPOSE[case]
    repo_id = register(system, make_repo(tmp_path / case, files, links))
    refused = generate(system, repo_id, expect=(403, 413, 422))
    assert_refused(refused, code, fragment)
    no_containers(system, engine)


# ---- files read and written by Portside ----------------------------------------------------------------------

def test_symlinked_dockerfile_and_dockerignore_never_return_host_files(system: System, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "links", {"app.py": "print('hi')\n", "requirements.txt": "flask==3.0.3\n"},
                     {"Dockerfile": "/etc/passwd", ".dockerignore": "/etc/os-release", ".gitignore": "/etc/hostname"})
    data = generate(system, register(system, root))["data"]
    host_files = [Path(p).read_text() for p in ("/etc/passwd", "/etc/os-release")]
    for text in (data["dockerfile"], data["dockerignore"], data["compose"]):
        assert "root:x:0:0" not in text and not any(line in text for line in host_files[1].splitlines() if "=" in line)
    # The symlinked Dockerfile counts as absent: Portside wrote its own.
    assert "Generated by Portside" in data["dockerfile"]


def test_a_deployment_folder_symlinked_out_gets_nothing_written(system: System, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = make_repo(tmp_path / "planted", {"index.html": "<h1>hi</h1>\n"}, {".deployment": str(outside)})
    refused = generate(system, register(system, root, clone=False), expect=422)
    assert_refused(refused, "PATH_OUTSIDE_REPOSITORY", ".deployment")
    assert list(outside.iterdir()) == []


# ---- what runs: only the assigned port, none of Portside's environment --------------------------------------

def test_extra_host_ports_are_dropped_and_portside_env_never_interpolates(
    system: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    compose = RUN_APP.replace('["8000:8000"]', '["8000:8000", "2222:22", "8001"]') + (
        "    environment:\n      LEAK: ${PORTSIDE_HOME:-absent}\n      DB: ${PORTSIDE_DATABASE_URL:-absent}\n"
        "  db:\n    image: python:3.12-slim\n    command: [\"sleep\", \"600\"]\n    ports: [\"15432:5432\"]\n")
    root = make_repo(tmp_path / "ports", {"compose.yaml": compose})
    deployment_id = generate(system, register(system, root))["data"]["deployment_id"]
    try:
        outcome = system.deploy(deployment_id)
        assert outcome["status"] == "running", outcome
        containers = {c.labels["com.docker.compose.service"]: c for c in system.containers(engine, deployment_id)}
        published = {
            name: sorted(
                b["HostPort"] for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values() for b in bindings
            )
            for name, c in containers.items()
        }
        assert published == {"app": [str(outcome["port"])], "db": []}, published
        env = dict(e.split("=", 1) for e in containers["app"].attrs["Config"]["Env"])
        assert env["LEAK"] == "absent" and env["DB"] == "absent"
        for container in containers.values():
            host = container.attrs["HostConfig"]
            assert not host["Privileged"] and not host["CapAdd"] and host["NetworkMode"] not in ("host",)
            assert all(m["Type"] != "bind" for m in container.attrs["Mounts"])
    finally:
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)
    assert system.containers(engine, deployment_id) == []


def test_an_edit_cannot_smuggle_what_generate_refused(system: System, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "edit", {"index.html": "<h1>hi</h1>\n"})
    generated = generate(system, register(system, root))["data"]
    compose = generated["compose"].replace("    restart:", "    privileged: ${P:-yes}\n    restart:", 1)
    assert compose != generated["compose"]
    refused = system.call("PUT", f"/api/deployments/{generated['deployment_id']}/files", json={"compose": compose},
                          expect=422)
    assert_refused(refused, "POLICY_VIOLATION", "privileged")


# ---- registration --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "code"), [
    ({"path": "/"}, 403, "REPO_PATH_FORBIDDEN"),
    ({"path": "/etc"}, 403, "REPO_PATH_FORBIDDEN"),
    ({"path": "/root/.ssh"}, 403, "REPO_PATH_FORBIDDEN"),
    ({"url": "https://127.0.0.1/x.git"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "https://localhost:8080/x.git"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "https://169.254.169.254/latest/meta-data"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "git@10.0.0.1:org/repo.git"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "ext::sh -c touch% /tmp/pwned"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "--upload-pack=touch /tmp/pwned"}, 422, "GIT_URL_FORBIDDEN"),
    ({"url": "http://example.com/x.git"}, 422, "GIT_URL_FORBIDDEN"),
])
def test_registration_refuses_system_paths_and_private_or_odd_git_urls(
    system: System, body: dict, status: int, code: str
) -> None:
    refused = system.call("POST", "/api/repositories", json=body, expect=status)
    assert refused["error_code"] == code, refused


def test_registration_refuses_portside_home_and_keeps_clone_names_in_the_repos_folder(
    system: System, tmp_path: Path
) -> None:
    refused = system.call("POST", "/api/repositories", json={"path": str(system.home)}, expect=403)
    assert refused["error_code"] == "REPO_PATH_FORBIDDEN"
    root = make_repo(tmp_path / "named", {"index.html": "hi\n"})
    repo = system.call("POST", "/api/repositories",
                       json={"url": f"file://{root}", "branch": "main", "name": "../../../../tmp/escaped"})["data"]
    assert Path(repo["path"]).parent == (system.home / "repos").resolve()


def test_credentials_in_a_git_url_are_never_stored_or_returned(system: System, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "creds", {"index.html": "hi\n"})
    # file:// ignores credentials, but Portside must still strip them before storing the URL.
    refused = system.call("POST", "/api/repositories", json={"url": "https://user:s3cret-token@127.0.0.1/x.git"},
                          expect=422)
    assert "s3cret-token" not in str(refused)
    listed = system.call("GET", "/api/repositories")["data"]
    assert "s3cret-token" not in str(listed)
    assert root.exists()


def test_request_bodies_are_bounded(system: System) -> None:
    huge = {"dockerfile": "FROM python:3.12-slim\n" + "# padding\n" * 600_000}
    refused = system.call("PUT", "/api/deployments/1/files", json=huge, expect=413)
    assert refused["error_code"] == "REQUEST_TOO_LARGE"


def test_a_build_variable_cannot_point_from_at_an_unlisted_registry(system: System, tmp_path: Path) -> None:
    root = make_repo(tmp_path / "buildvar", {
        "Dockerfile": 'ARG BASE=python:3.12-slim\nFROM ${BASE}\nCMD ["python3", "-m", "http.server", "8000"]\n'})
    deployment_id = generate(system, register(system, root))["data"]["deployment_id"]
    system.call("PUT", f"/api/deployments/{deployment_id}/env",
                json={"variables": [{"key": "BASE", "value": "evil.example.com/py:1", "secret": False, "build": True}]})
    outcome = system.deploy(deployment_id, expect=(200, 422))
    final = system.wait_status(deployment_id, {"build_failed", "error", "running"}, timeout=120)
    assert final["status"] == "build_failed" and final["error_code"] == "POLICY_VIOLATION", (outcome, final)
    assert "evil.example.com" in final["error_message"]

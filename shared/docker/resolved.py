"""The policy on what will run: the model `docker compose config` resolves from exactly the files, project
directory and environment the runner uses (interpolation, the repository's `.env`, `include`, `extends`, env files
and paths all applied), checked against an allowlist. The runner starts the checked model itself, so nothing can
change between the check and `up`.

A text check (policy.py) runs first on the files as written, because it can name the user's line; this one is the
authority, and names the key."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from shared.config import Settings
from shared.docker.client import Owner
from shared.docker.compose import run_compose
from shared.docker.policy import DOCKER_SOCKET, check_image
from shared.errors import ErrorCode, PortsideError
from shared.source import SourceTree, bounded_yaml

# Service keys a deployment may use as they are. Everything else is either checked below or refused:
# an allowlist, so a key Compose learns tomorrow is refused until someone decides it is safe.
SAFE_SERVICE_KEYS = frozenset({
    "annotations", "attach", "command", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_shares",
    "cpus", "cpuset", "depends_on", "develop", "dns", "dns_opt", "dns_search", "domainname", "entrypoint",
    "environment", "expose", "extra_hosts", "group_add", "healthcheck", "hostname", "init", "links",
    "mac_address", "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "pids_limit", "platform",
    "profiles", "pull_policy", "read_only", "restart", "scale", "shm_size", "stdin_open", "stop_grace_period",
    "stop_signal", "tmpfs", "tty", "ulimits", "user", "working_dir", "cap_drop", "image",
})
CHECKED_SERVICE_KEYS = frozenset({
    "build", "deploy", "env_file", "label_file", "labels", "logging", "networks", "ports", "secrets", "configs",
    "volumes", "sysctls", "security_opt", "privileged", "oom_score_adj", "network_mode", "ipc", "pid", "uts",
    "cgroup", "userns_mode", "post_start", "pre_stop",
})
# Why each refused key is refused, in the user's terms.
REFUSED_SERVICE_KEYS = {
    "cap_add": "adds Linux capabilities",
    "devices": "maps host devices",
    "device_cgroup_rules": "opens host devices through cgroup rules",
    "cgroup_parent": "places the container in a host cgroup",
    "volumes_from": "mounts another container's volumes",
    "external_links": "links to containers outside the deployment",
    "container_name": "fixes a container name, which could take another deployment's",
    "gpus": "asks for host GPUs",
    "runtime": "chooses another container runtime",
    "isolation": "chooses another isolation technology",
    "storage_opt": "sets storage driver options",
    "credential_spec": "uses host credentials",
    "oom_kill_disable": "stops the kernel from killing it when the host runs out of memory",
    "blkio_config": "throttles host block devices",
    "cpu_rt_runtime": "asks for real-time scheduling",
    "cpu_rt_period": "asks for real-time scheduling",
    "use_api_socket": "mounts the Docker API socket",
    "provider": "runs a provider plugin on the host",
    "models": "asks for host AI models",
    "extends": "extends a service Compose could not resolve",
}
NAMESPACED_SYSCTLS = ("net.", "kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.")
LOG_DRIVERS = frozenset({"json-file", "local"})
BUILD_KEYS = frozenset({
    "context", "dockerfile", "dockerfile_inline", "args", "target", "labels", "cache_from", "cache_to", "tags",
    "platforms", "pull", "no_cache", "shm_size", "ulimits", "extra_hosts",
})
RESERVED_LABEL_PREFIXES = ("com.docker.compose.",)


def _refuse(where: str, message: str) -> PortsideError:
    return PortsideError(ErrorCode.POLICY_VIOLATION, f"{where}: {message}")


@dataclass
class Checked:
    """A resolved model that passed the policy, ready to hand to `docker compose up`, and what was changed."""

    model: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def text(self) -> str:
        return json.dumps(self.model)


@dataclass(frozen=True)
class Scope:
    """What the resolved model is checked against."""

    repo_root: Path  # the checkout: every host path must resolve inside it
    project: str  # compose project name: networks and volumes must be the project's own
    app_service: str
    host_port: int
    bind_address: str
    allowed_registries: tuple[str, ...]
    own_image_prefix: str = ""  # images Portside built for this deployment (never pulled) start with it

    @classmethod
    def of(cls, settings: Settings, owner: Owner, repo_root: Path, app_service: str, host_port: int) -> Scope:
        return cls(Path(repo_root), owner.project, app_service, host_port, settings.bind_address,
                   tuple(settings.allowed_registries), owner.image_repo)


# ---- resolving ---------------------------------------------------------------------------------------------

def compose_environment(settings: Settings, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment Compose interpolates from: only what Portside sets, never the worker's own variables
    (a `${PORTSIDE_DATABASE_URL}` or `${AWS_SECRET_ACCESS_KEY}` in a repository must not reach a container)."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
           if key in os.environ}
    env.update(extra)
    return env


def check_project_files(repo_root: Path, project_dir: Path, files: Iterable[str]) -> None:
    """Before Compose reads anything: the repository's own compose files, what they `include` or `extend`, and
    the project's `.env` must be files inside the checkout (no symlink out, no absolute or remote path), and the
    `.env` may not steer Compose itself (COMPOSE_*, DOCKER_*)."""
    tree = SourceTree(repo_root)
    base = _relative(repo_root, project_dir)
    pending = [(str(PurePosixPath(base) / f) if base else f, "") for f in files]
    seen: set[str] = set()
    while pending:
        rel, via = pending.pop()
        rel = os.path.normpath(rel)
        if rel in seen:
            continue
        seen.add(rel)
        if len(seen) > 32:
            raise _refuse(via or rel, "more than 32 compose files are included; Portside stops there.")
        text = tree.read_text(rel)
        if text is None:
            raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                f"{via or rel}: `{rel}` is not a file inside the repository (a symlink out of it, "
                                "or missing); compose files may only include files of the repository.")
        doc = bounded_yaml(text, rel)
        if not isinstance(doc, dict):
            continue
        folder = os.path.dirname(rel)
        for target in _included(doc):
            pending.append((_inside_path(folder, target, rel), rel))
    env = _relative(repo_root, project_dir / ".env")
    if tree.has_file(env) or os.path.lexists(project_dir / ".env"):
        text = tree.read_text(env)
        if text is None:
            raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                ".env: the project's .env is a symlink out of the repository (or not a text file); "
                                "Compose would read it, so Portside refuses. Make it a plain file.")
        for number, line in enumerate(text.splitlines(), start=1):
            key = line.strip().removeprefix("export ").split("=", 1)[0].strip()
            if key.startswith(("COMPOSE_", "DOCKER_")):
                raise _refuse(f".env line {number}", f"`{key}` steers Docker Compose itself; Portside sets those. "
                                                     "Remove it from .env.")


def _relative(root: Path, path: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return "" if rel == "." else rel


def _included(doc: dict) -> list[str]:
    targets: list[str] = []
    include = doc.get("include") or []
    for entry in include if isinstance(include, list) else [include]:
        if isinstance(entry, str):
            targets.append(entry)
        elif isinstance(entry, dict):
            paths = entry.get("path")
            targets += [str(p) for p in (paths if isinstance(paths, list) else [paths]) if p]
            env_files = entry.get("env_file")
            targets += [str(p) for p in (env_files if isinstance(env_files, list) else [env_files]) if p]
            if entry.get("project_directory"):
                targets.append(str(entry["project_directory"]) + "/.")
    for service in (doc.get("services") or {}).values():
        extends = service.get("extends") if isinstance(service, dict) else None
        if isinstance(extends, dict) and extends.get("file"):
            targets.append(str(extends["file"]))
    return targets


def _inside_path(folder: str, target: str, rel: str) -> str:
    if "$" in target or "://" in target or target.startswith(("/", "~", "oci:", "git@")):
        raise _refuse(rel, f"`{target}` is an absolute, remote or interpolated path; include and extend only "
                           "files of the repository, by a relative path.")
    joined = os.path.normpath(os.path.join(folder, target))
    if joined == ".." or joined.startswith("../"):
        raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY, f"{rel}: `{target}` leaves the repository.")
    return joined.removesuffix("/.")


def resolve(
    settings: Settings, project: str, files: list[Path | str], project_dir: Path, env: Mapping[str, str],
    stdin: str | None = None, *, env_files: bool = True,
) -> dict[str, Any]:
    """The model as Compose resolves it, or INVALID_COMPOSE with Compose's own sentence. `env_files=False` keeps
    env files as paths (nothing is read from them), for checking where they are before anything reads them."""
    extra = [] if env_files else ["--no-env-resolution"]
    result = run_compose(settings, project, files, ["config", "--format", "json", *extra], env=dict(env),
                         timeout=60, project_dir=project_dir, stdin=stdin, clean_env=True)
    if not result.ok:
        message = (result.stderr.strip() or result.stdout.strip() or "docker compose config failed").splitlines()[-1]
        raise PortsideError(ErrorCode.INVALID_COMPOSE, f"docker compose refuses the files: {message}")
    try:
        return json.loads(result.stdout)
    except ValueError as exc:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, "docker compose config printed no model.") from exc


# ---- checking ----------------------------------------------------------------------------------------------

class _Paths:
    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)

    def inside(self, path: str) -> bool:
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)


def check_env_files(unresolved: dict[str, Any], scope: Scope) -> None:
    """Env and label files are read by Compose on the host: only files of the repository."""
    paths = _Paths(scope.repo_root)
    for name, service in (unresolved.get("services") or {}).items():
        for key in ("env_file", "label_file"):
            entries = service.get(key) or []
            for entry in entries if isinstance(entries, list) else [entries]:
                path = entry.get("path") if isinstance(entry, dict) else entry
                if path and not paths.inside(str(path)):
                    raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                        f"services.{name}.{key}: `{path}` is outside the repository (after symlinks); "
                                        "keep env files in the repository.")


def check_model(model: dict[str, Any], scope: Scope) -> Checked:
    """The allowlist on a resolved model. Returns the model to run (host ports other than the assigned one are
    dropped, with a warning) or raises POLICY_VIOLATION / PATH_OUTSIDE_REPOSITORY naming the key."""
    checked = Checked(model=json.loads(json.dumps(model)))
    paths = _Paths(scope.repo_root)
    top_networks = _check_networks(checked.model, scope)
    top_volumes = _check_volumes(checked.model, scope)
    for kind in ("secrets", "configs"):
        for name, entry in (checked.model.get(kind) or {}).items():
            where = f"{kind}.{name}"
            if not isinstance(entry, dict):
                continue
            if entry.get("external"):
                raise _refuse(where, "is external: it would read something outside the deployment.")
            if entry.get("environment"):
                raise _refuse(where, "reads a variable of Portside's own environment; use `file:` in the repository.")
            if entry.get("file") and not paths.inside(str(entry["file"])):
                raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                    f"{where}.file: `{entry['file']}` is outside the repository (after symlinks).")
    for key in ("models",):
        if checked.model.get(key):
            raise _refuse(key, "top-level models are not supported by Portside.")
    for name, service in (checked.model.get("services") or {}).items():
        _check_service(str(name), service, scope, paths, top_networks, top_volumes, checked)
    return checked


def _check_networks(model: dict[str, Any], scope: Scope) -> set[str]:
    names = set()
    for key, network in (model.get("networks") or {}).items():
        where = f"networks.{key}"
        network = network or {}
        if network.get("external"):
            raise _refuse(where, "is external: a deployment joins only its own networks.")
        if network.get("driver") not in (None, "bridge"):
            raise _refuse(where, f"uses the `{network['driver']}` driver; only bridge networks are allowed.")
        for option in ("driver_opts", "ipam"):
            if network.get(option) and network[option] != {}:
                raise _refuse(f"{where}.{option}", "sets network options Portside does not allow; remove them.")
        expected = (scope.project, f"{scope.project}_{key}")
        if network.get("name") and network["name"] not in expected:
            raise _refuse(f"{where}.name", f"`{network['name']}` is not this deployment's network; remove `name`.")
        names.add(str(key))
    return names


def _check_volumes(model: dict[str, Any], scope: Scope) -> set[str]:
    names = set()
    for key, volume in (model.get("volumes") or {}).items():
        where = f"volumes.{key}"
        volume = volume or {}
        if volume.get("external"):
            raise _refuse(where, "is external: a deployment uses only its own volumes.")
        if volume.get("driver") not in (None, "local"):
            raise _refuse(where, f"uses the `{volume['driver']}` driver; only local volumes are allowed.")
        if volume.get("driver_opts"):
            raise _refuse(f"{where}.driver_opts", "sets volume driver options (a host bind in disguise); remove them.")
        if volume.get("name") and volume["name"] != f"{scope.project}_{key}":
            raise _refuse(f"{where}.name", f"`{volume['name']}` is not this deployment's volume; remove `name`.")
        names.add(str(key))
    return names


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


def _check_service(
    name: str, service: dict[str, Any], scope: Scope, paths: _Paths, networks: set[str], volumes: set[str],
    checked: Checked,
) -> None:
    at = f"services.{name}"
    for key, value in list(service.items()):
        if key.startswith("x-") or value in (None, [], {}, "", False):
            continue
        if key in REFUSED_SERVICE_KEYS:
            raise _refuse(f"{at}.{key}", f"service `{name}` {REFUSED_SERVICE_KEYS[key]}; remove `{key}`.")
        if key not in SAFE_SERVICE_KEYS and key not in CHECKED_SERVICE_KEYS:
            raise _refuse(f"{at}.{key}", f"`{key}` is not among the keys Portside allows; remove it.")
    if _truthy(service.get("privileged")):
        raise _refuse(f"{at}.privileged", f"service `{name}` asks for a privileged container; remove `privileged`.")
    for key in ("network_mode", "ipc", "pid", "uts", "cgroup", "userns_mode"):
        value = service.get(key)
        allowed = ("none",) if key == "network_mode" else ("private", "shareable") if key == "ipc" else \
            ("private",) if key == "cgroup" else ()
        if value and str(value) not in allowed:
            raise _refuse(f"{at}.{key}", f"service `{name}` sets `{key}: {value}` (a host or another container's "
                                         "namespace); remove it, Portside gives each deployment its own.")
    for index, option in enumerate(service.get("security_opt") or []):
        if str(option).replace(" ", "").lower() not in ("no-new-privileges", "no-new-privileges:true",
                                                        "no-new-privileges=true"):
            raise _refuse(f"{at}.security_opt[{index}]", f"`{option}` changes the container's confinement; only "
                                                         "no-new-privileges is allowed.")
    oom = service.get("oom_score_adj")
    if oom is not None and int(oom) < 0:
        raise _refuse(f"{at}.oom_score_adj", "a negative value makes the host kill other processes first; remove it.")
    for key, value in (service.get("sysctls") or {}).items():
        if not str(key).startswith(NAMESPACED_SYSCTLS):
            raise _refuse(f"{at}.sysctls.{key}", "is not a per-container sysctl; remove it.")
    logging = service.get("logging") or {}
    if logging.get("driver") not in (None, *LOG_DRIVERS):
        raise _refuse(f"{at}.logging.driver", f"`{logging['driver']}` sends logs outside the deployment; Portside "
                                              "keeps them (json-file or local).")
    for hook in ("post_start", "pre_stop"):
        for index, entry in enumerate(service.get(hook) or []):
            if isinstance(entry, dict) and _truthy(entry.get("privileged")):
                raise _refuse(f"{at}.{hook}[{index}].privileged", "a privileged hook; remove `privileged`.")
    for key in list(service.get("labels") or {}):
        # Compose finds a project's containers by its own labels: a repository must not pose as another project.
        if str(key).startswith(RESERVED_LABEL_PREFIXES):
            raise _refuse(f"{at}.labels.{key}", "is a label Compose sets itself; use another name.")
    _check_deploy(at, service.get("deploy") or {})
    for network in (service.get("networks") or {}):
        if network not in networks:
            raise _refuse(f"{at}.networks.{network}", "is not a network of this deployment.")
    for index, volume in enumerate(service.get("volumes") or []):
        _check_mount(f"{at}.volumes[{index}]", volume, paths, volumes)
    for kind in ("secrets", "configs"):
        for index, entry in enumerate(service.get(kind) or []):
            source = entry.get("source") if isinstance(entry, dict) else entry
            if source not in (checked.model.get(kind) or {}):
                raise _refuse(f"{at}.{kind}[{index}]", f"`{source}` is not declared in the top-level {kind}.")
    if service.get("build"):
        _check_build(at, service["build"], paths)
    image = service.get("image")
    if image and not (scope.own_image_prefix and str(image).startswith(scope.own_image_prefix)):
        check_image(str(image), scope.allowed_registries, None, f"{at}.image")
    _keep_assigned_ports(name, service, scope, checked)


def _check_deploy(at: str, deploy: dict[str, Any]) -> None:
    reservations = ((deploy.get("resources") or {}).get("reservations") or {})
    if reservations.get("devices") or reservations.get("generic_resources"):
        raise _refuse(f"{at}.deploy.resources.reservations", "reserves host devices; remove it.")


def _check_mount(where: str, volume: Any, paths: _Paths, volumes: set[str]) -> None:
    if not isinstance(volume, dict):
        raise _refuse(where, "is not a mount Compose resolved.")
    kind = volume.get("type")
    source = str(volume.get("source") or "")
    if kind == "bind":
        if DOCKER_SOCKET.search(source) or not paths.inside(source):
            what = "the Docker socket" if DOCKER_SOCKET.search(source) else f"the host path `{source}`"
            raise PortsideError(
                ErrorCode.PATH_OUTSIDE_REPOSITORY if "socket" not in what else ErrorCode.POLICY_VIOLATION,
                f"{where}: mounts {what}, outside the repository (after symlinks); use a named volume "
                "or a path inside the repository.",
            )
        propagation = (volume.get("bind") or {}).get("propagation")
        if propagation not in (None, "", "rprivate", "private"):
            raise _refuse(f"{where}.bind.propagation", f"`{propagation}` shares mounts with the host; remove it.")
    elif kind == "volume":
        if source and source not in volumes:
            raise _refuse(where, f"`{source}` is not a volume of this deployment.")
    elif kind != "tmpfs":
        raise _refuse(where, f"mounts of type `{kind}` are not allowed.")


def _check_build(at: str, build: dict[str, Any], paths: _Paths) -> None:
    for key in build:
        if key not in BUILD_KEYS:
            raise _refuse(f"{at}.build.{key}", f"build option `{key}` is not allowed (it reaches past the build).")
    context = str(build.get("context") or "")
    if "://" in context or not paths.inside(context):
        raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                            f"{at}.build.context: `{context}` is outside the repository (after symlinks).")
    dockerfile = build.get("dockerfile")
    if dockerfile and not paths.inside(os.path.join(context, str(dockerfile))):
        raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                            f"{at}.build.dockerfile: `{dockerfile}` is outside the repository (after symlinks).")


def _keep_assigned_ports(name: str, service: dict[str, Any], scope: Scope, checked: Checked) -> None:
    """Only the app's binding to the host port Portside assigned stays; any other published port is dropped."""
    kept, dropped = [], []
    for entry in service.get("ports") or []:
        published = str(entry.get("published") or "") if isinstance(entry, dict) else ""
        host_ip = entry.get("host_ip") if isinstance(entry, dict) else None
        if name == scope.app_service and published == str(scope.host_port) and host_ip in (scope.bind_address, None):
            entry["host_ip"] = scope.bind_address
            kept.append(entry)
        else:
            dropped.append(entry)
    if dropped:
        what = ", ".join(
            f"{e.get('published') or 'a random port'}->{e.get('target')}" if isinstance(e, dict) else str(e)
            for e in dropped
        )
        checked.warnings.append(f"services.{name}.ports: dropped {what}; only the port Portside assigned "
                                f"({scope.host_port}) is published on the host.")
    if "ports" in service:
        service["ports"] = kept


# ---- the whole step, as the runner and validation use it -----------------------------------------------------

# Portside's own compose file lives in Postgres (the user's edits included) and reaches Compose on stdin.
PORTSIDE_COMPOSE = ".deployment/docker-compose.yml"


def invocation(app_dir: Path, compose_files: list[str]) -> tuple[list[Path | str], Path]:
    """The `-f` list and project directory for a deployment's compose files, the same for checking and running:
    relative paths resolve from where the first file lives."""
    files: list[Path | str] = ["-" if name == PORTSIDE_COMPOSE else app_dir / name for name in compose_files]
    return files, (app_dir / compose_files[0]).parent


def interpolation_env(
    settings: Settings, image: str, host_port: int, generated: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the runner sets for Compose (and nothing of its own environment): `generated` holds the deployment's
    generated passwords (shared/secrets.py), which compose files name as `${PORTSIDE_..._PASSWORD}`."""
    return compose_environment(settings, {
        **(generated or {}),
        "PORTSIDE_IMAGE": image, "PORTSIDE_HOST_PORT": str(host_port), "PORTSIDE_BIND_ADDRESS": settings.bind_address,
    })


def resolve_and_check(
    settings: Settings, scope: Scope, files: list[Path | str], project_dir: Path, env: Mapping[str, str],
    stdin: str | None = None,
) -> Checked:
    """Contained files first, then Compose's resolution (with `env` as its whole environment: see
    interpolation_env), then the allowlist on what Compose would run."""
    check_project_files(scope.repo_root, project_dir,
                        [_relative(project_dir, Path(f)) for f in files if str(f) != "-"])
    check_env_files(resolve(settings, scope.project, files, project_dir, env, stdin, env_files=False), scope)
    return check_model(resolve(settings, scope.project, files, project_dir, env, stdin), scope)

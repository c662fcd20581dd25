"""The security policy for Dockerfiles and compose files, generated or edited: no privileged containers, no host
namespaces, no Docker socket or host paths, no added capabilities or devices, images only from allowed
registries. Each refusal is a POLICY_VIOLATION naming the file's line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

import yaml

from shared.docker.dockerfile import Dockerfile
from shared.errors import ErrorCode, PortsideError
from shared.source import YamlTooLarge, bounded_yaml, compose_yaml

HOST_NAMESPACE_KEYS = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")
UNCONFINED = re.compile(r"^(seccomp[:=]unconfined|apparmor[:=]unconfined|label[:=]disable|systempaths[:=]unconfined)$")
DOCKER_SOCKET = re.compile(r"(^|/)docker\.sock$|^/var/run/docker|^/run/docker")


def _refuse(line: int | None, message: str) -> PortsideError:
    where = f"line {line}: " if line else ""
    return PortsideError(ErrorCode.POLICY_VIOLATION, where + message)


# ---- images ------------------------------------------------------------------------------------------------

def image_registry(reference: str) -> str:
    """The registry host of an image reference (`python:3.12-slim` -> docker.io, `ghcr.io/a/b` -> ghcr.io)."""
    first, sep, _ = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def check_image(reference: str, allowed: Iterable[str], line: int | None = None, what: str = "image") -> None:
    registry = image_registry(reference)
    allowed = [a.lower().rstrip("/") for a in allowed]
    if registry == "index.docker.io" or registry == "registry-1.docker.io":
        registry = "docker.io"
    if registry not in allowed:
        raise _refuse(line, f"{what} `{reference}` comes from {registry}, which is not an allowed registry "
                            f"({', '.join(allowed)}); use an image from one of those, or ask the administrator to "
                            "add the registry to PORTSIDE_ALLOWED_REGISTRIES.")


# ---- Dockerfile ----------------------------------------------------------------------------------------------

# BuildKit RUN options that reach past the build sandbox: host networking, the host's SSH agent or secrets,
# privileged steps.
RUN_MOUNT_TYPES_REFUSED = ("ssh", "secret")


def check_dockerfile_policy(
    dockerfile: Dockerfile, allowed_registries: Iterable[str], build_args: Mapping[str, str] | None = None
) -> None:
    """Every image the build would use (after ARG substitution with the build args the compose file passes),
    the `# syntax=` frontend included, comes from an allowed registry; no step asks for more than the sandbox."""
    allowed = list(allowed_registries)
    syntax = dockerfile.directives.get("syntax")
    if syntax:
        check_image(syntax, allowed, 1, "the `# syntax=` frontend image")
    stages: set[str] = set()
    for base in dockerfile.base_images(build_args):
        image = base.reference
        if "$" in image:
            raise _refuse(
                base.line,
                f"FROM `{image}` uses a variable without a value; Portside checks every "
                "base image against the allowed registries, so name it (or give the ARG a default).",
            )
        if image.lower() not in stages and image.lower() != "scratch":
            check_image(image, allowed, base.line, "base image")
        if base.stage:
            stages.add(base.stage)
    for instruction in dockerfile.instructions:
        flags = instruction.flags
        if instruction.keyword == "RUN":
            if flags.get("security", "").lower() == "insecure":
                raise _refuse(
                    instruction.line, "RUN --security=insecure asks for a privileged build step; remove the flag."
                )
            if flags.get("network", "").lower() == "host":
                raise _refuse(
                    instruction.line, "RUN --network=host puts a build step on the host's network; remove the flag."
                )
            # Every --mount (the flags map keeps only the last of a repeated flag).
            leading = instruction.args[: len(instruction.args) - len(instruction.value)]
            for mount in re.findall(r"--mount=(\S+)", leading):
                kind = re.search(r"(?:^|,)type=(\w+)", mount)
                if kind and kind[1].lower() in RUN_MOUNT_TYPES_REFUSED:
                    raise _refuse(
                        instruction.line,
                        f"RUN --mount=type={kind[1]} lends the host's {kind[1]} to the build; "
                        "pass what the build needs as a build argument or a file in the repository.",
                    )
                if re.search(r"(?:^|,)id=[\"']?portside-", mount, re.IGNORECASE):
                    raise _refuse(
                        instruction.line,
                        "RUN --mount ids starting with `portside-` are the deployments' own download caches; "
                        "choose another id.",
                    )
        if instruction.keyword in ("COPY", "ADD"):
            source = flags.get("from")
            if source and source.lower() not in stages and not source.isdigit():
                check_image(source, allowed, instruction.line, "COPY --from image")


# ---- compose ------------------------------------------------------------------------------------------------

def _node_lines(node: yaml.Node) -> dict[tuple[str, ...], int]:
    """Every mapping key / sequence item path in a composed YAML tree -> its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(n, yaml.SequenceNode):
            for index, item in enumerate(n.value):
                sub = (*path, str(index))
                lines[sub] = item.start_mark.line + 1
                walk(item, sub)

    walk(node, ())
    return lines


def load_compose(text: str) -> tuple[dict, dict[tuple[str, ...], int]]:
    """The document and the line of every key, or INVALID_COMPOSE with the line of the YAML error."""
    try:
        node = compose_yaml(text)
        doc = bounded_yaml(text)
    except YamlTooLarge as exc:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, f"The compose file is refused: {exc}.") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise PortsideError(ErrorCode.INVALID_COMPOSE,
                            f"{where}the compose file is not valid YAML ({getattr(exc, 'problem', exc)}).") from exc
    return (doc if isinstance(doc, dict) else {}), (_node_lines(node) if node is not None else {})


def _volume_source(volume: Any) -> str | None:
    """The host source of a bind mount, None for a named or anonymous volume."""
    if isinstance(volume, dict):
        return str(volume.get("source") or "") if volume.get("type") == "bind" else None
    text = str(volume)
    if ":" not in text:
        return None
    source = text.split(":", 1)[0]
    if source.startswith((".", "/", "~", "$")) or "/" in source:
        return source
    return None


def _bind_allowed(source: str) -> bool:
    """Only paths inside the project (relative, not climbing out) may be bound; never the Docker socket."""
    if DOCKER_SOCKET.search(source):
        return False
    if source.startswith(("/", "~", "$")):
        return False
    parts = PurePosixPath(source).parts
    depth = 0
    for part in parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return False
    return True


def _services(doc: dict) -> Iterator[tuple[str, dict]]:
    services = doc.get("services")
    if not isinstance(services, dict):
        return
    for name, service in services.items():
        if isinstance(service, dict):
            yield str(name), service


def check_compose_policy(text: str, allowed_registries: Iterable[str]) -> dict:
    """Check one compose file as written (so the line numbers are the user's). Returns the parsed document."""
    doc, lines = load_compose(text)
    allowed = list(allowed_registries)
    for name, service in _services(doc):
        def at(*key: str, name: str = name) -> int | None:
            return lines.get(("services", name, *key)) or lines.get(("services", name))

        if service.get("privileged") in (True, "true", "True"):
            raise _refuse(at("privileged"), f"service `{name}` asks for a privileged container; remove `privileged`.")
        for key in HOST_NAMESPACE_KEYS:
            value = str(service.get(key, ""))
            if value == "host" or (key == "network_mode" and value.startswith("container:")) or \
                    (key in ("pid", "ipc") and value.startswith("container:")):
                raise _refuse(
                    at(key),
                    f"service `{name}` shares the host's (or another container's) {key.split('_')[0]} "
                    f"namespace (`{key}: {value}`); remove it, Portside gives each deployment its own network.",
                )
        if service.get("cap_add"):
            raise _refuse(
                at("cap_add"), f"service `{name}` adds Linux capabilities ({service['cap_add']}); remove `cap_add`."
            )
        for key in ("devices", "device_cgroup_rules"):
            if service.get(key):
                raise _refuse(at(key), f"service `{name}` maps host devices (`{key}`); remove it.")
        for index, option in enumerate(service.get("security_opt") or []):
            if UNCONFINED.match(str(option).replace(" ", "")):
                raise _refuse(
                    at("security_opt", str(index)), f"service `{name}` turns off a confinement (`{option}`); remove it."
                )
        for index, volume in enumerate(service.get("volumes") or []):
            source = _volume_source(volume)
            if source is not None and not _bind_allowed(source):
                what = "the Docker socket" if DOCKER_SOCKET.search(source) else f"the host path `{source}`"
                raise _refuse(at("volumes", str(index)),
                              f"service `{name}` mounts {what}; use a named volume, or a path inside the repository.")
        image = service.get("image")
        if isinstance(image, str) and image and "$" not in image:
            check_image(image, allowed, at("image"), f"service `{name}` image")
    volumes = volumes if isinstance(volumes := doc.get("volumes"), dict) else {}
    for name, volume in volumes.items():
        options = (volume or {}).get("driver_opts") if isinstance(volume, dict) else None
        device = str((options or {}).get("device", ""))
        if device and not _bind_allowed(device):
            raise _refuse(lines.get(("volumes", str(name), "driver_opts")),
                          f"volume `{name}` binds the host path `{device}`; use a plain named volume.")
    return doc

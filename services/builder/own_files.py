"""Repositories that bring their own Dockerfile or compose file are built and run from those, unchanged.
Portside only adds what it must in an override file (`.deployment/docker-compose.yml`, applied after theirs):
the host port binding of the app service, its labels on every container, network and volume, and images for
the services it builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from shared.docker import Owner
from shared.docker.policy import load_compose
from shared.errors import ErrorCode, PortsideError
from shared.source import SourceTree

DOCKERFILE_NAMES = ("Dockerfile", "dockerfile")
# Compose's own lookup order.
COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE = ".deployment/docker-compose.yml"


# Every read goes through the contained layer: a file symlinked out of the repository counts as absent.
def own_dockerfile(tree: SourceTree) -> str | None:
    return tree.first_file(*DOCKERFILE_NAMES)


def own_compose(tree: SourceTree) -> str | None:
    return tree.first_file(*COMPOSE_NAMES)


def own_dockerignore(tree: SourceTree) -> str:
    """Their .dockerignore as it is, plus Portside's folder (its compose file holds generated passwords)."""
    text = tree.read_text(".dockerignore") or ".git\n"
    if ".deployment" not in text.split():
        text = text.rstrip("\n") + "\n# Added by Portside: its own folder never goes into an image.\n.deployment\n"
    return text


@dataclass(frozen=True)
class BuildTarget:
    """A compose service Portside builds (compose itself runs with --no-build)."""

    service: str
    context: str  # relative to the app directory
    dockerfile: str  # relative to the context
    target: str | None = None
    args: dict[str, str] = field(default_factory=dict)


def build_targets(doc: dict) -> list[BuildTarget]:
    result = []
    for name, service in (doc.get("services") or {}).items():
        if not isinstance(service, dict) or "build" not in service:
            continue
        build = service["build"]
        if isinstance(build, str):
            result.append(BuildTarget(str(name), build, "Dockerfile"))
            continue
        if not isinstance(build, dict):
            continue
        args = build.get("args") or {}
        if isinstance(args, list):
            args = dict(str(a).split("=", 1) for a in args if "=" in str(a))
        result.append(BuildTarget(
            str(name), str(build.get("context", ".")), str(build.get("dockerfile", "Dockerfile")),
            build.get("target"), {str(k): str(v) for k, v in args.items() if v is not None},
        ))
    return result


def _container_port(service: dict) -> int | None:
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            target = entry.get("target")
            if target:
                return int(target)
            continue
        text = str(entry).split("/")[0]
        last = text.rsplit(":", 1)[-1]
        if last.split("-")[0].isdigit():
            return int(last.split("-")[0])
    for entry in service.get("expose") or []:
        text = str(entry).split("/")[0]
        if text.isdigit():
            return int(text)
    return None


def pick_app_service(doc: dict, fallback_port: int | None) -> tuple[str, int | None]:
    """The service that serves the app: one Portside builds from the repository root, else one that publishes a
    port, else the first. Its container port comes from `ports`/`expose`, else the detected port."""
    services = {str(k): v for k, v in (doc.get("services") or {}).items() if isinstance(v, dict)}
    if not services:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, "The compose file has no services.")
    built_here = [t.service for t in build_targets(doc) if t.context.rstrip("/") in (".", "./", "")]
    publishing = [n for n, s in services.items() if s.get("ports")]
    name = (built_here or [t.service for t in build_targets(doc)] or publishing or list(services))[0]
    return name, _container_port(services[name]) or fallback_port


def service_image(owner: Owner, service: str, app_service: str) -> str:
    """The tag Portside builds a service's image under (the app's comes from PORTSIDE_IMAGE at run time)."""
    if service == app_service:
        return f"${{PORTSIDE_IMAGE:-{owner.image_repo}:latest}}"
    return f"{owner.image_repo}-{service}:latest"


@dataclass(frozen=True)
class Override:
    text: str
    app_service: str
    port: int | None
    notes: list[str]


class _Tagged(str):
    """A scalar written with a compose merge tag (`!override`, `!reset`)."""


def render_override(owner: Owner, compose_name: str, compose_text: str, fallback_port: int | None) -> Override:
    """Portside's override for a repository's own compose file."""
    doc, _ = load_compose(compose_text)
    app_service, port = pick_app_service(doc, fallback_port)
    labels = owner.labels
    notes = [f"Using the repository's own {compose_name}; Portside publishes service `{app_service}`"
             + (f" (container port {port})" if port else "") + " and adds labels in this override."]
    built = {t.service for t in build_targets(doc)}
    services: dict[str, Any] = {}
    for name, service in (doc.get("services") or {}).items():
        name = str(name)
        if not isinstance(service, dict):
            continue
        entry: dict[str, Any] = {}
        if name in built:
            entry["image"] = service_image(owner, name, app_service)
        if name == app_service and port:
            bind = f"${{PORTSIDE_BIND_ADDRESS:-0.0.0.0}}:${{PORTSIDE_HOST_PORT:?Portside sets the host port}}:{port}"
            entry["ports"] = ("!override", [bind])
            if service.get("ports") and len(service["ports"]) > 1:
                notes.append(f"Only port {port} of `{name}` is published; its other `ports:` entries are dropped.")
        elif service.get("ports"):
            # Fixed host ports would collide between deployments; the services still reach each other by name.
            entry["ports"] = ("!reset", [])
            notes.append(f"`{name}` publishes no host port here (reach it as `{name}` inside the deployment).")
        if service.get("container_name"):
            # A fixed name would collide with a second deployment of the same repository.
            entry["container_name"] = ("!reset", None)
            notes.append(f"`{name}`'s container_name is dropped so two deployments can run side by side.")
        entry["labels"] = labels
        services[name] = entry
    out: dict[str, Any] = {"services": services}
    volumes = {str(n): {"labels": labels} for n, v in (doc.get("volumes") or {}).items()
               if not (isinstance(v, dict) and v.get("external"))}
    if volumes:
        out["volumes"] = volumes
    networks: dict[str, Any] = {"default": {"name": owner.project, "labels": labels}}
    for name, network in (doc.get("networks") or {}).items():
        if str(name) != "default" and not (isinstance(network, dict) and network.get("external")):
            networks[str(name)] = {"labels": labels}
    out["networks"] = networks
    header = (
        f"# Generated by Portside for deployment {owner.deployment_id}: an override applied after the repository's\n"
        f"# own {compose_name} (docker compose -f {compose_name} -f {OVERRIDE}). That file is used unchanged.\n"
        "# This one only publishes the app's port and labels what runs, so Portside can find and clean it up.\n"
    )
    return Override(header + _dump(out), app_service, port, notes)


def _dump(doc: dict) -> str:
    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def represent_tagged(dumper: yaml.SafeDumper, value: tuple) -> yaml.Node:
        tag, inner = value
        if isinstance(inner, list):
            return dumper.represent_sequence(tag, inner)
        return dumper.represent_scalar(tag, "")

    Dumper.add_representer(tuple, represent_tagged)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=120)

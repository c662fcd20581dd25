"""Checks on Dockerfiles and compose files, generated or edited by users, before anything is built:
syntax (our parser, hadolint's parser, `docker compose config`), lint (hadolint) and the security policy."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from shared.config import Settings
from shared.docker.compose import run_compose
from shared.docker.dockerfile import read_dockerfile
from shared.docker.lint import check_lint
from shared.docker.policy import check_compose_policy, check_dockerfile_policy, load_compose
from shared.errors import ErrorCode, PortsideError


def check_dockerfile(
    text: str, allowed_registries: Iterable[str], *, strict_lint: bool = False,
    build_args: Mapping[str, str] | None = None,
) -> list[str]:
    """Syntax (the reader that agrees with Docker), the security policy, then hadolint. Lint findings are
    returned as warnings; with `strict_lint` (files Portside wrote itself) a hadolint error refuses the file.
    A repository's or a user's own file is refused only by the syntax and the policy, never by style."""
    dockerfile = read_dockerfile(text)
    check_dockerfile_policy(dockerfile, allowed_registries, build_args)
    return [str(w) for w in check_lint(text, strict=strict_lint)]


def validate_compose(text: str, app_service: str | None = "app") -> dict:
    """YAML and shape. `app_service` None: an override file, whose services may all come from another file."""
    doc, _ = load_compose(text)
    if not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, "The compose file needs a `services:` mapping with at least one service.")
    if app_service and app_service not in doc["services"]:
        raise PortsideError(ErrorCode.INVALID_COMPOSE, f"The compose file needs a service named `{app_service}` (the one Portside publishes).")
    return doc


# What the runner sets when it runs `docker compose up`; `config` needs them to interpolate.
COMPOSE_ENV = {"PORTSIDE_IMAGE": "portside/validate:latest", "PORTSIDE_HOST_PORT": "20000", "PORTSIDE_BIND_ADDRESS": "127.0.0.1"}


def compose_config(settings: Settings, text: str, app_dir: Path | None = None, before: list[str] | None = None) -> None:
    """`docker compose config` on the file (after the repository's own files in `before`, for an override), so
    everything Compose itself would refuse is refused now. No engine is needed."""
    with tempfile.TemporaryDirectory(prefix="portside-compose-") as tmp:
        project_dir = app_dir if app_dir is not None and app_dir.is_dir() else Path(tmp)
        target = Path(tmp) / "docker-compose.yml"
        target.write_text(text)
        files = [project_dir / f for f in (before or []) if (project_dir / f).is_file()] + [target]
        result = run_compose(settings, "portside-validate", files, ["config", "--quiet"], env=COMPOSE_ENV,
                             timeout=60, project_dir=project_dir)
    if not result.ok:
        message = (result.stderr.strip() or result.stdout.strip() or "docker compose config failed").splitlines()[-1]
        raise PortsideError(ErrorCode.INVALID_COMPOSE, f"docker compose refuses the file: {message}")


def check_compose(
    settings: Settings, text: str, *, app_service: str | None = "app", app_dir: Path | None = None,
    before: list[str] | None = None,
) -> dict:
    """Shape, the security policy on the file as written (so lines are the user's), then Compose's own check.
    The repository's own compose files (`before`) are checked by the policy too."""
    doc = validate_compose(text, app_service=None if before else app_service)
    check_compose_policy(text, settings.allowed_registries)
    for name in before or []:
        path = (app_dir / name) if app_dir else None
        if path is not None and path.is_file():
            try:
                check_compose_policy(path.read_text(errors="replace"), settings.allowed_registries)
            except PortsideError as exc:
                raise PortsideError(exc.code, f"{name}: {exc.message}") from exc
    compose_config(settings, text, app_dir, before)
    return doc

"""Checks on Dockerfiles and compose files, generated or edited by users, before anything is built:
syntax (our parser, hadolint's parser, `docker compose config`), lint (hadolint) and the security policy."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from shared.config import Settings
from shared.docker.client import Owner
from shared.docker.dockerfile import read_dockerfile
from shared.docker.lint import check_lint
from shared.docker.policy import check_compose_policy, check_dockerfile_policy, load_compose
from shared.docker.resolved import PORTSIDE_COMPOSE, Checked, Scope, interpolation_env, invocation, resolve_and_check
from shared.errors import ErrorCode, PortsideError
from shared.secrets import generated_keys
from shared.source import SourceTree


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
        raise PortsideError(
            ErrorCode.INVALID_COMPOSE, "The compose file needs a `services:` mapping with at least one service."
        )
    if app_service and app_service not in doc["services"]:
        raise PortsideError(
            ErrorCode.INVALID_COMPOSE,
            f"The compose file needs a service named `{app_service}` (the one Portside publishes).",
        )
    return doc


# Validation runs before a port is assigned: any port in the range stands in for it.
# (and any value for a generated password).
PLACEHOLDER_IMAGE, PLACEHOLDER_PORT, PLACEHOLDER_SECRET = "portside/validate:latest", 20000, "validating"


def check_compose(
    settings: Settings, text: str, *, owner: Owner, repo_root: Path, app_dir: Path, app_service: str = "app",
    before: list[str] | None = None,
) -> Checked:
    """Shape and the policy on the file as written (so refusals name the user's line; the repository's own files
    in `before` too, read through the contained file layer), then the policy on what Compose resolves from
    exactly the files, project directory and environment the runner will use."""
    before = list(before or [])
    validate_compose(text, app_service=None if before else app_service)
    check_compose_policy(text, settings.allowed_registries)
    tree = SourceTree(repo_root)
    texts = [text]
    for name in before:
        rel = os.path.relpath(app_dir / name, repo_root)
        theirs = tree.read_text(rel)
        if theirs is None:
            raise PortsideError(ErrorCode.PATH_OUTSIDE_REPOSITORY,
                                f"{name} is not a file inside the repository (a symlink out of it, or too large).")
        texts.append(theirs)
        try:
            check_compose_policy(theirs, settings.allowed_registries)
        except PortsideError as exc:
            raise PortsideError(exc.code, f"{name}: {exc.message}") from exc
    files, project_dir = invocation(app_dir, [*before, PORTSIDE_COMPOSE])
    scope = Scope.of(settings, owner, repo_root, app_service, PLACEHOLDER_PORT)
    return resolve_and_check(settings, scope, files, project_dir,
                             interpolation_env(settings, PLACEHOLDER_IMAGE, PLACEHOLDER_PORT,
                                               {key: PLACEHOLDER_SECRET for key in generated_keys(*texts)}),
                             stdin=text)

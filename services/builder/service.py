"""What generation and the build session share: where the files live in the app directory, and the app
directory itself."""

from __future__ import annotations

from pathlib import Path

from shared.db.models import Deployment
from shared.errors import ErrorCode, PortsideError

DEPLOYMENT_DIR = ".deployment"
DOCKERFILE = f"{DEPLOYMENT_DIR}/Dockerfile"
COMPOSE_FILE = f"{DEPLOYMENT_DIR}/docker-compose.yml"


def app_dir_of(repo_root: Path, deployment: Deployment) -> Path:
    """The app's directory in the checkout at `repo_root` (shared/checkout.py), after symlinks, or
    PATH_OUTSIDE_REPOSITORY when it leads out of the checkout."""
    root = repo_root.resolve()
    app_dir = (root / deployment.app_path).resolve()
    if app_dir != root and root not in app_dir.parents:
        raise PortsideError(
            ErrorCode.PATH_OUTSIDE_REPOSITORY,
            f"app_path `{deployment.app_path}` leads out of the repository (a symlink); choose a folder inside it.",
        )
    return app_dir

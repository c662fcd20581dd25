"""What may be registered as a repository: local directories only where the administrator allows them and never
system directories or Portside's own home; git URLs are cloned by shared/git.py (a size and time limit, none of
the host's git or SSH credentials, pinned to the addresses that were checked)."""

from __future__ import annotations

import os
from pathlib import Path

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.git import GIT_SCHEMES, clone, head_commit, pull

__all__ = ["GIT_SCHEMES", "check_local_path", "clone", "head_commit", "pull"]

# Never registrable, nor anything inside them: the host's system, secrets and runtime state.
SYSTEM_DIRS = ("/etc", "/root", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32",
               "/lib64", "/var/run", "/run", "/var/lib", "/var/log", "/var/spool", "/var/cache", "/srv/docker",
               "/snap", "/lost+found")


def _forbidden(path: str, why: str) -> PortsideError:
    return PortsideError(ErrorCode.REPO_PATH_FORBIDDEN, f"{path} cannot be registered: {why}")


def check_local_path(path: str, settings: Settings) -> Path:
    """The real path of a directory that may be registered, or REPO_PATH_FORBIDDEN / INVALID_REPOSITORY."""
    if not settings.allow_local_repos:
        raise _forbidden(path, "local directories are off on this installation; register a git URL, or ask the "
                               "administrator to set PORTSIDE_ALLOW_LOCAL_REPOS=true.")
    if not Path(path).is_absolute():
        raise PortsideError(
            ErrorCode.INVALID_REPOSITORY, f"`{path}` is not an absolute path; give the full path of the directory."
        )
    root = Path(os.path.realpath(path))
    home = Path(os.path.realpath(settings.home))
    if root == Path("/"):
        raise _forbidden(path, "it is the root of the file system.")
    for system in SYSTEM_DIRS:
        if root == Path(system) or Path(system) in root.parents:
            raise _forbidden(path, f"it is (or is inside) the system directory {system}.")
    if root == home or home in root.parents or root in home.parents:
        raise _forbidden(path, f"it is, holds or lies inside Portside's own home ({home}).")
    if not root.is_dir():
        raise PortsideError(ErrorCode.REPO_NOT_FOUND, f"{path} does not exist or is not a directory.")
    return root

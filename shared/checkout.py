"""Where a worker finds a repository's source: the API's clone when it is on this worker's disk (one machine, or a
shared PORTSIDE_HOME), otherwise the worker's own checkout of the commit the API registered, fetched with git into
PORTSIDE_HOME/workspace, so a builder or detector on another machine works on exactly what the API cloned."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from uuid import uuid4

from shared.config import Settings
from shared.db.models import Repository
from shared.errors import ErrorCode, PortsideError
from shared.git import GIT_SCHEMES, fetch_commit
from shared.outbound import check_url

WORKSPACE = "workspace"
# A checkout of an older commit of the same repository is removed once it has not been touched for this long
# (a build that still uses one finishes well within it).
STALE_SECONDS = 3600.0


def source_root(settings: Settings, repo: Repository) -> Path:
    """The directory holding the repository's source on this machine (blocking: call it in a worker thread).
    REPO_NOT_FOUND for a local directory this machine does not have; GIT_CLONE_FAILED (and the like) when the
    fetch fails."""
    here = Path(repo.path)
    if here.is_dir():
        return here
    if not repo.url:
        raise PortsideError(
            ErrorCode.REPO_NOT_FOUND,
            f"The local directory {repo.path} is not on this worker's disk ({socket.gethostname()}): a local "
            "directory builds only on the machine that has it. Run the workers there, or register the "
            "repository by its git URL.",
        )
    workspace = settings.home / WORKSPACE
    if repo.commit_sha and (done := workspace / f"{repo.id}-{repo.commit_sha}").is_dir():
        os.utime(done)
        return done
    # Target checked again here: a worker resolves the name itself, and the answer may have changed.
    target = check_url(repo.url, schemes=GIT_SCHEMES, allow_private=settings.allow_private_networks,
                       allow_file=settings.allow_local_repos, what="git URL")
    workspace.mkdir(parents=True, exist_ok=True, mode=0o750)
    partial = workspace / f".{repo.id}-{uuid4().hex}"
    commit = fetch_commit(target, repo.branch, repo.commit_sha, partial, settings)
    done = workspace / f"{repo.id}-{commit}"
    try:
        partial.rename(done)  # atomic: a concurrent fetch of the same commit may have won; then use its copy
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
        if not done.is_dir():
            raise
    _forget_older(workspace, repo.id, keep=done)
    return done


def keep_in_use(settings: Settings, mount_sources: list[str]) -> None:
    """Mark the checkouts that running containers bind-mount from as used now, so a newer commit's fetch does not
    remove them under a running app (the runner's reconciler calls this every pass)."""
    workspace = (settings.home / WORKSPACE).resolve()
    for source in mount_sources:
        path = Path(source)
        if workspace in path.parents:
            checkout = workspace / path.relative_to(workspace).parts[0]
            try:
                os.utime(checkout)
            except OSError:
                continue


def _forget_older(workspace: Path, repo_id: int, keep: Path) -> None:
    now = time.time()
    for old in workspace.glob(f"{repo_id}-*"):
        try:
            if old != keep and now - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue

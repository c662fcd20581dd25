"""git, run safely for any Portside process: the API's clones and pulls, and a worker's fetch of one pinned commit
when the API's clone is not on its disk. None of the host's git or SSH credentials, a size and time limit, and
https pinned to the addresses that were checked."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.outbound import Target, redact_url

GIT_SCHEMES = ("https", "ssh", "git")


def _git_env(target: Target, workdir: Path) -> dict[str, str]:
    """A git that knows nothing of the host: no global or system config, no credential helpers, no SSH keys or
    agent, no prompts; credentials from the URL ride in an Authorization header set through the environment."""
    (workdir / "home").mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir / "home"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": (f"ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none "
                            f"-o IdentityFile=/dev/null -o StrictHostKeyChecking=accept-new "
                            f"-o UserKnownHostsFile={workdir / 'known_hosts'}"),
    }
    config = [("http.followRedirects", "false"), ("protocol.allow", "never"), ("credential.helper", "")]
    config += [(f"protocol.{s}.allow", "always") for s in (target.scheme,)]
    if target.scheme == "https" and target.addresses:
        # Pin the name to the addresses checked, so a second DNS answer cannot point git at loopback.
        config.append(("http.curloptResolve", f"{target.host}:{target.port}:{target.addresses[0]}"))
    if target.scheme == "https" and (target.username or target.password):
        token = base64.b64encode(f"{target.username or ''}:{target.password or ''}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"], env[f"GIT_CONFIG_VALUE_{index}"] = key, value
    return env


def _size_bytes(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def _check_branch(branch: str) -> None:
    if branch.startswith("-") or any(ord(c) < 33 for c in branch):
        raise PortsideError(ErrorCode.VALIDATION_ERROR, f"`{branch}` is not a branch name.")


def _run_git(
    cmd: list[str], target: Target, dest: Path, settings: Settings, failed: ErrorCode, verb: str
) -> tuple[ErrorCode, str] | None:
    """Run a git command that writes into `dest`, killed past PORTSIDE_MAX_REPO_MB or
    PORTSIDE_CLONE_TIMEOUT_SECONDS; the reason it stopped (credentials redacted), or None when it succeeded."""
    limit = settings.max_repo_mb * 1024 * 1024
    stopped: tuple[ErrorCode, str] | None = None
    with tempfile.TemporaryDirectory(prefix="portside-git-") as tmp:
        process = subprocess.Popen(cmd, env=_git_env(target, Path(tmp)), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.extend(process.stderr or []), daemon=True)
        reader.start()
        deadline = time.monotonic() + settings.clone_timeout_seconds
        while process.poll() is None:
            if time.monotonic() > deadline:
                stopped = (
                    failed,
                    (f"{verb.capitalize()} took more than {settings.clone_timeout_seconds:.0f} s "
                     "(PORTSIDE_CLONE_TIMEOUT_SECONDS)."),
                )
            elif dest.exists() and _size_bytes(dest) > limit:
                stopped = (ErrorCode.REPO_TOO_LARGE, (f"The repository is larger than {settings.max_repo_mb} MB "
                                                     f"(PORTSIDE_MAX_REPO_MB); {verb} was stopped."))
            if stopped:
                process.kill()
                break
            time.sleep(0.2)
        process.wait()
        reader.join(timeout=5)
    if stopped is None and dest.exists() and _size_bytes(dest) > limit:
        stopped = (
            ErrorCode.REPO_TOO_LARGE,
            f"The repository is larger than {settings.max_repo_mb} MB (PORTSIDE_MAX_REPO_MB).",
        )
    if stopped is None and process.returncode != 0:
        last = redact_url(("".join(stderr).strip().splitlines() or ["unknown error"])[-1])
        stopped = (failed, f"git could not {verb} {target.url}: {last}. Check the URL and branch.")
    return stopped


def clone(target: Target, branch: str | None, dest: Path, settings: Settings) -> None:
    """`git clone --depth 1` into `dest`, stopped (and removed) past PORTSIDE_MAX_REPO_MB or
    PORTSIDE_CLONE_TIMEOUT_SECONDS. Errors never carry credentials."""
    cmd = ["git", "clone", "--depth", "1", "--no-recurse-submodules"]
    if branch:
        _check_branch(branch)
        cmd += ["--branch", branch]
    cmd += ["--", target.url, str(dest)]
    stopped = _run_git(cmd, target, dest, settings, ErrorCode.GIT_CLONE_FAILED, "clone")
    if stopped:
        shutil.rmtree(dest, ignore_errors=True)
        raise PortsideError(*stopped)


def pull(target: Target, branch: str | None, dest: Path, settings: Settings) -> None:
    """Bring the clone in `dest` to the newest commit of `branch` (the remote's default branch when None):
    `git fetch --depth 1` from the checked `target`, then a hard reset to what was fetched. Same git environment
    and limits as `clone`; files git does not track (the generated Dockerfile folder) are left alone. On failure
    the working tree is as it was."""
    if branch:
        _check_branch(branch)
    fetch = ["git", "-C", str(dest), "fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--",
             target.url, branch or "HEAD"]
    stopped = _run_git(fetch, target, dest, settings, ErrorCode.GIT_PULL_FAILED, "pull")
    if stopped is None:
        reset = ["git", "-C", str(dest), "reset", "--hard", "--quiet", "FETCH_HEAD"]
        stopped = _run_git(reset, target, dest, settings, ErrorCode.GIT_PULL_FAILED, "pull")
    if stopped:
        raise PortsideError(*stopped)


def head_commit(dest: Path) -> str | None:
    """The commit a checkout is at (None when git cannot tell, e.g. a local directory that is no git repository)."""
    result = _local_git(dest, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    sha = result.stdout.strip().lower()
    return sha if result.returncode == 0 and sha else None


def fetch_commit(target: Target, branch: str | None, commit: str | None, dest: Path, settings: Settings) -> str:
    """A new checkout of `commit` in `dest` (which must not exist): `git fetch --depth 1` of that commit, or,
    where the server refuses a fetch by id, of `branch` (the default branch when None), which must then be at
    that commit. With no commit, whatever `branch` is at now. Returns the commit checked out; on failure `dest`
    is removed."""
    if branch:
        _check_branch(branch)
    dest.mkdir(parents=True)
    try:
        stopped = _run_git(["git", "init", "--quiet", str(dest)], target, dest, settings,
                           ErrorCode.GIT_CLONE_FAILED, "fetch")
        wants = [commit, branch or "HEAD"] if commit else [branch or "HEAD"]
        for attempt, want in enumerate(wants):
            if stopped:
                break
            fetch = ["git", "-C", str(dest), "fetch", "--depth", "1", "--no-tags", "--no-recurse-submodules",
                     "--", target.url, want]
            stopped = _run_git(fetch, target, dest, settings, ErrorCode.GIT_CLONE_FAILED, "fetch")
            if stopped is None:
                break
            if attempt + 1 < len(wants) and stopped[0] == ErrorCode.GIT_CLONE_FAILED:
                stopped = None  # the server does not serve commits by id: try the branch
        if stopped is None:
            checkout = ["git", "-C", str(dest), "checkout", "--quiet", "--detach", "FETCH_HEAD"]
            stopped = _run_git(checkout, target, dest, settings, ErrorCode.GIT_CLONE_FAILED, "fetch")
        if stopped:
            raise PortsideError(*stopped)
        fetched = head_commit(dest)
        if fetched is None or (commit and fetched != commit):
            raise PortsideError(
                ErrorCode.GIT_CLONE_FAILED,
                f"{target.url} no longer has commit {commit} where this worker can fetch it (its "
                f"{branch or 'default branch'} is at {fetched}); pull the repository again "
                "(POST /api/repositories/{id}/pull), then deploy.",
            )
        return fetched
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def ls_remote(target: Target, ref: str | None, settings: Settings) -> str | None:
    """The commit `ref` (a branch name, a full ref such as refs/pull/7/head, or None for the remote's HEAD) points
    at on the remote, or None when the remote has no such ref. Same clean git environment as a clone, killed past
    PORTSIDE_CLONE_TIMEOUT_SECONDS; GIT_PULL_FAILED when git fails."""
    if ref:
        _check_branch(ref)
    wanted = "HEAD" if not ref else ref if ref.startswith("refs/") else f"refs/heads/{ref}"
    with tempfile.TemporaryDirectory(prefix="portside-git-") as tmp:
        try:
            done = subprocess.run(["git", "ls-remote", "--", target.url, wanted], env=_git_env(target, Path(tmp)),
                                  capture_output=True, text=True, timeout=settings.clone_timeout_seconds, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PortsideError(ErrorCode.GIT_PULL_FAILED, (f"git ls-remote {target.url} took more than "
                                f"{settings.clone_timeout_seconds:.0f} s (PORTSIDE_CLONE_TIMEOUT_SECONDS).")) from exc
    if done.returncode != 0:
        last = redact_url((done.stderr.strip().splitlines() or ["unknown error"])[-1])
        raise PortsideError(ErrorCode.GIT_PULL_FAILED, f"git could not list {target.url}: {last}.")
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == wanted:
            return sha.strip().lower()
    return None


def _local_git(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git on a clone Portside made, with none of the host's configuration."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", "-C", str(dest), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def checked_out_branch(dest: Path) -> str | None:
    """The branch a clone has checked out (a clone without `--branch` has the remote's default one)."""
    done = _local_git(dest, "symbolic-ref", "--quiet", "--short", "HEAD")
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def changed_files(dest: Path, before: str | None, after: str | None) -> list[str] | None:
    """Paths that differ between two commits of a clone, or None when that can't be told (a shallow clone may
    lack the older commit): callers then treat everything as changed."""
    if not before or not after:
        return None
    done = _local_git(dest, "diff", "--name-only", "--no-renames", before, after, "--")
    return done.stdout.splitlines() if done.returncode == 0 else None


def checkout_ref(target: Target, ref: str, dest: Path, settings: Settings) -> None:
    """A new clone of one ref that `git clone --branch` cannot name (refs/pull/7/head): an empty repository, then
    `pull` of the ref. Removed again on failure."""
    _check_branch(ref)
    dest.mkdir(parents=True)
    try:
        if _local_git(dest, "init", "--quiet").returncode != 0:
            raise PortsideError(ErrorCode.GIT_CLONE_FAILED, f"git could not make a checkout in {dest}.")
        pull(target, ref, dest, settings)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise

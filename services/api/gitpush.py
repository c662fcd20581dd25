"""Deploy on git push and preview deployments: what a verified delivery (or the poller) does to a repository.

A push to the tracked branch pulls the clone, detects again when a manifest changed, and queues a deploy of every
deployment of the repository that is not stopped. Which commit to deploy is what the remote says now
(`git ls-remote`), never what the delivery says: a repeated or late delivery then finds the newest commit already
deployed (or being deployed) and does nothing. A pull request gets a repository of its own (a checkout of the ref
the host keeps its head under), a deployment generated like the parent's first one, the parent's variables
(secret ones only when the parent allows it), and is stopped and deleted when the request closes.
Runs in the API process, one repository (or pull request) at a time."""

from __future__ import annotations

import asyncio
import logging
import secrets as _secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import service
from services.api.bus import Bus
from services.api.hooks import PullRequest, Push
from services.api.registration import check_local_path
from shared.config import Settings
from shared.db.models import Deployment, EnvVar, GitDelivery, Repository
from shared.db.repository import load_detection, record_event, transition
from shared.db.status import RESTING
from shared.db.status import DeploymentStatus as S
from shared.errors import ErrorCode, PortsideError
from shared.git import GIT_SCHEMES, changed_files, checked_out_branch, checkout_ref, head_commit, ls_remote
from shared.messaging.events import GenerateRequested
from shared.messaging.subjects import Subject
from shared.outbound import Target, check_url
from shared.secrets import Cipher

log = logging.getLogger(__name__)

# A change to one of these can change what the detector decides, so a push touching one detects again.
MANIFESTS = frozenset({
    "package.json", "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "bun.lockb", "bun.lock", "deno.json",
    "requirements.txt", "pyproject.toml", "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock", "setup.py",
    "runtime.txt", ".python-version", ".nvmrc", ".node-version", "go.mod", "go.sum", "Gemfile", "Gemfile.lock",
    "composer.json", "composer.lock", "Cargo.toml", "Cargo.lock", "pom.xml", "build.gradle", "build.gradle.kts",
    "mix.exs", "Procfile", "Dockerfile", "docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml",
})
# Statuses a push waits out before it pulls: a build reads the checkout, and deploy is refused from these.
IN_FLIGHT = frozenset({S.GENERATING, S.QUEUED, S.BUILDING, S.STARTING, S.STOPPING})


def hook_secret(settings: Settings, repo: Repository, rotate: bool = False) -> str:
    """The repository's hook secret, made (and stored encrypted) when it has none or `rotate` asks for a new one.
    The caller commits."""
    cipher = Cipher(settings)
    if repo.hook_secret_encrypted is None or rotate:
        repo.hook_secret_encrypted = cipher.encrypt(_secrets.token_urlsafe(32))
    return cipher.decrypt(repo.hook_secret_encrypted)


def stored_secret(settings: Settings, repo: Repository) -> str | None:
    return Cipher(settings).decrypt(repo.hook_secret_encrypted) if repo.hook_secret_encrypted else None


def _target(settings: Settings, repo: Repository) -> Target:
    """The repository's URL checked again now, with the registration's rules (a host may have changed address)."""
    assert repo.url
    target = check_url(repo.url, schemes=GIT_SCHEMES, allow_private=settings.allow_private_networks,
                       allow_file=settings.allow_local_repos, what="git URL")
    if target.scheme == "file":
        check_local_path(target.url.removeprefix("file://"), settings)
    return target


async def _deployments(session: AsyncSession, repo_id: int) -> list[Deployment]:
    return list((await session.scalars(
        select(Deployment).where(Deployment.repository_id == repo_id).order_by(Deployment.id)
        .execution_options(populate_existing=True)  # statuses as they are now, not as first read
    )).all())


async def _wait_until_settled(session: AsyncSession, settings: Settings, repo_id: int) -> None:
    """Wait while a deployment of the repository generates, builds, starts or stops (the checkout must not change
    under a build); INVALID_STATE past the build timeout."""
    deadline = anyio.current_time() + settings.build_timeout_seconds + settings.ready_timeout_seconds
    while True:
        # Columns, not objects: the identity map would answer with the statuses read the first time.
        rows = (await session.execute(
            select(Deployment.id, Deployment.status).where(Deployment.repository_id == repo_id)
        )).all()
        busy = [(d, status) for d, status in rows if S(status) in IN_FLIGHT]
        if not busy:
            return
        if anyio.current_time() > deadline:
            raise PortsideError(ErrorCode.INVALID_STATE, f"Deployment {busy[0][0]} stayed {busy[0][1]}; the "
                                                         "push was not deployed. Deploy by hand once it settles.")
        await session.commit()  # hold no snapshot or lock while waiting
        await anyio.sleep(1)


async def _claim(session: AsyncSession, repo_id: int, previous: str | None, sha: str) -> bool:
    """Record `sha` as the commit being deployed, unless another delivery changed it meanwhile (the guard is in
    the UPDATE, so two API replicas cannot both claim)."""
    guard = Repository.deploy_sha.is_(None) if previous is None else Repository.deploy_sha == previous
    row = (await session.execute(
        update(Repository).where(Repository.id == repo_id, guard).values(deploy_sha=sha).returning(Repository.id)
    )).first()
    await session.commit()
    return row is not None


async def _release(session: AsyncSession, repo_id: int, claimed: str, previous: str | None) -> None:
    """A deploy that failed before it was queued gives the commit back, so the next delivery tries it again."""
    await session.rollback()
    await session.execute(update(Repository).where(Repository.id == repo_id, Repository.deploy_sha == claimed)
                          .values(deploy_sha=previous))
    await session.commit()


async def _regenerate(session: AsyncSession, bus: Bus, deployment: Deployment, why: str, stack: str) -> None:
    # The deployment's stack is the one it was generated for, and the builder refuses a stack other than the
    # detected one (as it would a user's `stack`): it is generated again for the stack detected now.
    result = await transition(session, deployment.id, S.GENERATING, why, stack=stack)
    await session.commit()
    if not result.applied:
        return
    await bus.request(
        Subject.GENERATE_REQUESTED, GenerateRequested(deployment_id=deployment.id),
        answers=(Subject.GENERATE_COMPLETED, Subject.GENERATE_FAILED),
    )
    await session.refresh(deployment)
    if S(deployment.status) != S.READY:
        raise PortsideError(ErrorCode.GENERATION_FAILED, f"Deployment {deployment.id} could not be generated again "
                                                         f"after the push: {deployment.error_message}")


async def _redeploy(
    session: AsyncSession, bus: Bus, repo: Repository, sha: str, changed: list[str] | None
) -> list[str]:
    """Queue a deploy of each deployment that is not stopped (a user's stop is respected); detect again first
    when a manifest changed, and generate again a resting deployment whose detected stack changed."""
    manifests = changed is None or any(Path(p).name in MANIFESTS for p in changed)
    done: list[str] = []
    for deployment in await _deployments(session, repo.id):
        if S(deployment.status) == S.STOPPED or not deployment.dockerfile_content:
            done.append(f"deployment {deployment.id} is {deployment.status}: left alone")
            continue
        if manifests:
            before = await load_detection(session, repo.id, deployment.app_path)
            after = await service.detect(session, bus, repo.id, deployment.app_path)
            if before is not None and after.stack != before.stack:
                why = f"push {sha[:12]}: the detected stack changed from {before.stack} to {after.stack}"
                if S(deployment.status) in RESTING:
                    await _regenerate(session, bus, deployment, why + "; generating again", after.stack)
                else:
                    await record_event(session, deployment.id, deployment.status,
                                       why + "; the running deployment keeps its files (generate again to switch)")
        await record_event(session, deployment.id, deployment.status, f"git push: deploying {sha[:12]}")
        await session.commit()
        try:
            await service.deploy(session, bus, deployment.id)
        except PortsideError as exc:  # one deployment's refusal (its port taken, ...) must not hold back the others
            # (no rollback: deploy's refusals write nothing, or commit the `error` they record, and a rollback
            # would expire the deployments this loop still reads)
            done.append(f"deployment {deployment.id} failed: {exc.code}: {exc.message}")
            continue
        done.append(f"deployment {deployment.id} queued")
    return done


async def sync_branch(session: AsyncSession, bus: Bus, repo_id: int, push: Push | None) -> str:
    """Deploy the newest commit of the repository's tracked branch if it is not the one deployed or deploying.
    `push` is the delivery that asked (None: the poller). Returns what was done, for the delivery's record."""
    settings = bus.settings
    repo = await session.get(Repository, repo_id)
    if repo is None:
        return "ignored: the repository is gone"
    if repo.url is None:
        return "ignored: a registered directory is not a clone; nothing to pull"
    folder = Path(repo.path)
    tracked = repo.branch or (push.default_branch if push else None)
    if tracked is None:
        tracked = await anyio.to_thread.run_sync(checked_out_branch, folder)
    if push is not None and push.branch != tracked:
        return f"ignored: {push.branch} is not the tracked branch {tracked}"
    tip = await anyio.to_thread.run_sync(ls_remote, _target(settings, repo), repo.branch, settings)
    if tip is None:
        return f"ignored: the remote has no branch {tracked}"
    previous = repo.deploy_sha
    baseline = previous or await anyio.to_thread.run_sync(head_commit, folder)
    if tip == baseline:
        if previous is None:
            await _claim(session, repo_id, None, tip)
        return f"nothing to do: {tip[:12]} is already deployed or deploying"
    if not await _claim(session, repo_id, previous, tip):
        return "nothing to do: another delivery is deploying this repository"
    try:
        await _wait_until_settled(session, settings, repo_id)
        before = await anyio.to_thread.run_sync(head_commit, folder)
        await service.pull_repository(session, settings, repo_id)
        after = await anyio.to_thread.run_sync(head_commit, folder) or tip
        if after != tip:  # the branch moved on between ls-remote and the fetch: that newer commit is deployed
            await session.execute(update(Repository).where(Repository.id == repo_id).values(deploy_sha=after))
            await session.commit()
        changed = await anyio.to_thread.run_sync(changed_files, folder, before, after)
        done = await _redeploy(session, bus, repo, after, changed)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _release(session, repo_id, tip, previous)
        raise
    return f"deploying {after[:12]}: " + ("; ".join(done) or "no deployment to deploy")


async def _preview_of(session: AsyncSession, parent_id: int, number: int) -> Repository | None:
    return await session.scalar(select(Repository).where(
        Repository.preview_of == parent_id, Repository.preview_number == number))


async def _copy_env(session: AsyncSession, parent: Repository, template: Deployment, deployment_id: int) -> int:
    """The template's variables onto the preview's deployment; secret ones only when the parent allows it.
    Values stay encrypted (the same installation key)."""
    rows = (await session.scalars(select(EnvVar).where(EnvVar.deployment_id == template.id))).all()
    kept = [r for r in rows if parent.preview_secrets or not r.secret]
    session.add_all(EnvVar(deployment_id=deployment_id, key=r.key, value_encrypted=r.value_encrypted,
                           secret=r.secret, build=r.build) for r in kept)
    await session.commit()
    return len(rows) - len(kept)


async def remove_preview(session: AsyncSession, bus: Bus, preview_id: int) -> None:
    """Stop and delete the preview's deployments (containers, network, images, port), then its checkout."""
    for deployment_id, status in (await session.execute(
        select(Deployment.id, Deployment.status).where(Deployment.repository_id == preview_id)
    )).all():
        if S(status) not in RESTING:
            await service.stop(session, bus, deployment_id, wait=True)
    await _wait_until_settled(session, bus.settings, preview_id)
    await service.delete_repository(session, bus, bus.settings, preview_id)


async def _closed(session: AsyncSession, repo_id: int, ref: str) -> bool:
    """Whether the newest close-or-reopen delivery recorded for this pull request closed it (the host keeps the
    ref after a close, so a late `synchronize` would otherwise deploy it again)."""
    last = await session.scalar(
        select(GitDelivery.event).where(
            GitDelivery.repository_id == repo_id, GitDelivery.ref == ref,
            GitDelivery.event.like("%:closed") | GitDelivery.event.like("%:reopened"),
        ).order_by(GitDelivery.id.desc()).limit(1)
    )
    return last is not None and last.endswith(":closed")


async def sync_preview(session: AsyncSession, bus: Bus, parent_id: int, pull: PullRequest) -> str:
    """Open, update or remove the preview deployment of pull request `pull.number` of repository `parent_id`."""
    settings = bus.settings
    parent = await session.get(Repository, parent_id)
    if parent is None or parent.url is None:
        return "ignored: previews need a cloned repository"
    preview = await _preview_of(session, parent.id, pull.number)
    if pull.closed:
        if preview is None:
            return f"nothing to do: pull request {pull.number} has no preview"
        await remove_preview(session, bus, preview.id)
        return f"preview of pull request {pull.number} removed"
    if not pull.reopened and await _closed(session, parent.id, pull.ref):
        return f"ignored: pull request {pull.number} was closed (a late delivery); reopen it to preview again"
    target = _target(settings, parent)
    tip = await anyio.to_thread.run_sync(ls_remote, target, pull.ref, settings)
    if tip is None:
        return f"ignored: the remote has no {pull.ref}"
    if preview is not None:
        previous = preview.deploy_sha
        if tip == previous:
            return f"nothing to do: the preview already runs {tip[:12]}"
        if not await _claim(session, preview.id, previous, tip):
            return "nothing to do: another delivery is deploying this preview"
        try:
            await _wait_until_settled(session, settings, preview.id)
            await service.pull_repository(session, settings, preview.id)
            done = await _redeploy(session, bus, preview, tip, None)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _release(session, preview.id, tip, previous)
            raise
        return f"preview updated to {tip[:12]}: " + "; ".join(done)
    template = next((d for d in await _deployments(session, parent.id) if d.dockerfile_content), None)
    if template is None:
        return "ignored: the repository has no deployment to model a preview on; generate one first"
    name = f"{parent.name}-pr-{pull.number}"
    dest = settings.repos_dir / f"{name}-{uuid4().hex[:8]}"
    await anyio.to_thread.run_sync(checkout_ref, target, pull.ref, dest, settings)
    preview = Repository(name=name, path=str(dest), url=parent.url, branch=pull.ref, owner_id=parent.owner_id,
                         preview_of=parent.id, preview_number=pull.number, deploy_sha=tip)
    session.add(preview)
    await session.commit()
    preview_id = preview.id
    try:
        deployment = await service.generate(
            session, bus, settings, preview_id, app_path=template.app_path, stack=None, port=None,
            internal_port=template.internal_port, cpu_limit=template.cpu_limit, memory_limit=template.memory_limit,
        )
        withheld = await _copy_env(session, parent, template, deployment.id)
        note = f"preview of pull request {pull.number} at {tip[:12]}"
        if withheld:
            note += f"; {withheld} secret variable(s) not copied (the repository does not share secrets with previews)"
        await record_event(session, deployment.id, deployment.status, note)
        await session.commit()
        await service.deploy(session, bus, deployment.id)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await session.rollback()
            await remove_preview(session, bus, preview_id)
        raise
    return f"preview of pull request {pull.number} created: deployment {deployment.id} deploying {tip[:12]}"


class GitHooks:
    """Runs deliveries in the background (a git host waits about 10 s for an answer, a deploy takes minutes), one
    at a time per repository or pull request, and polls every PORTSIDE_GIT_POLL_SECONDS when that is above 0."""

    def __init__(self, bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.bus = bus
        self.sessions = sessions
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    def _lock(self, key: tuple[int, int]) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, object]]) -> None:
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(work())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def submit(self, repo_id: int, delivery_pk: int | None, action: Push | PullRequest | None) -> None:
        """Act on a recorded delivery (or a poll, when `delivery_pk` is None) in the background."""
        self._spawn(lambda: self.run(repo_id, delivery_pk, action))

    async def run(self, repo_id: int, delivery_pk: int | None, action: Push | PullRequest | None) -> str:
        key = (repo_id, action.number if isinstance(action, PullRequest) else 0)
        async with self._lock(key), self.sessions() as session:
            try:
                if isinstance(action, PullRequest):
                    outcome = await sync_preview(session, self.bus, repo_id, action)
                else:
                    outcome = await sync_branch(session, self.bus, repo_id, action)
            except PortsideError as exc:
                outcome = f"failed: {exc.code}: {exc.message}"
            except Exception as exc:  # a background task has no caller to tell: the delivery's record does
                log.exception("git delivery for repository %s failed", repo_id)
                outcome = f"failed: {ErrorCode.INTERNAL_ERROR}: {exc.__class__.__name__}"
            if delivery_pk is not None:
                await session.rollback()
                await session.execute(update(GitDelivery).where(GitDelivery.id == delivery_pk)
                                      .values(outcome=outcome[:2000]))
                await session.commit()
            log.info("git repository %s: %s", repo_id, outcome)
            return outcome

    async def poll_once(self) -> None:
        """Every cloned repository that has a deployment, previews included (a preview's ref moves with its PR)."""
        async with self.sessions() as session:
            repos = (await session.scalars(
                select(Repository).where(Repository.url.is_not(None),
                                         Repository.id.in_(select(Deployment.repository_id)))
                .order_by(Repository.id)
            )).all()
            work = [(r.preview_of, PullRequest(r.preview_number, False, None, r.branch or "", None))
                    if r.preview_of is not None and r.preview_number is not None else (r.id, None) for r in repos]
        for repo_id, action in work:
            await self.run(repo_id, None, action)

    async def poll_forever(self) -> None:
        interval = self.bus.settings.git_poll_seconds
        while True:
            await anyio.sleep(interval)
            try:
                await self.poll_once()
            except Exception:  # the next round tries again; one bad repository must not end polling
                log.exception("git poll failed")

    def start(self) -> None:
        if self.bus.settings.git_poll_seconds > 0:
            self._spawn(self.poll_forever)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        # Cancelled work gives its claimed commit back (sync_branch's shielded release) before the engine closes.
        await asyncio.gather(*self._tasks, return_exceptions=True)

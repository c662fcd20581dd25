"""Portside's tags in a real registry (Debian's docker-registry on loopback, as the Swarm tests run it; Swarm mode
is not needed here): a redeploy's prune keeps the newest PORTSIDE_KEEP_IMAGES and the tags in use, a deleted
deployment loses every tag, the janitor's sweep removes what deleted deployments left, and the registry's garbage
collector (scripts/registry-gc.sh) then frees the layers. The images are tiny ones built FROM scratch on the test
engine and pushed by it, as the builder pushes."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import docker
import httpx
import pytest

from shared.docker.client import Owner
from shared.docker.registry import prune_registry, sweep_registry
from tests.support import ROOT
from tests.swarm_support import registry


@pytest.fixture
def address(tmp_path: Path) -> Iterator[str]:
    with registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def pushed(engine: docker.DockerClient) -> Iterator[list[str]]:
    """Tags pushed by the test; removed from the engine afterwards (by tag: never by id)."""
    tags: list[str] = []
    yield tags
    for tag in tags:
        try:
            engine.images.remove(tag)
        except docker.errors.NotFound:
            pass


def _push(engine: docker.DockerClient, pushed: list[str], reference: str, content: str) -> None:
    """An image FROM scratch holding `content` (the same content gives the same manifest digest), pushed."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY content /content\n"), ("content", content.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    engine.images.build(fileobj=context, custom_context=True, tag=reference, rm=True)
    pushed.append(reference)
    repository, _, tag = reference.rpartition(":")
    for chunk in engine.api.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in chunk, chunk


def _tags(address: str, name: str) -> set[str]:
    answer = httpx.get(f"http://{address}/v2/{name}/tags/list", timeout=10)
    return set(answer.json().get("tags") or []) if answer.status_code == 200 else set()


def _blobs(root: Path) -> int:
    return sum(1 for p in (root / "data").rglob("data") if "blobs" in p.parts)


def test_registry_prune_keeps_the_newest_and_the_tags_in_use_then_delete_and_gc_free_everything(
    engine: docker.DockerClient, address: str, pushed: list[str], tmp_path: Path
) -> None:
    owner = Owner(f"regtest-{uuid4().hex[:8]}", 1, address)
    name = owner.image_repo.removeprefix(f"{address}/")
    for tag in ("100", "200", "300", "400"):
        _push(engine, pushed, f"{owner.image_repo}:{tag}", f"{owner.instance} build {tag}")
    _push(engine, pushed, f"{owner.image_repo}:500", f"{owner.instance} build 400")  # a rebuild, unchanged
    _push(engine, pushed, f"{owner.image_repo}-db:latest", f"{owner.instance} db")  # a service Portside built
    blobs_full = _blobs(tmp_path / "registry")

    # A redeploy: the newest (500) and the one kept for rollback (100) stay; 400 shares 500's manifest, so stays.
    kept = prune_registry(address, owner, {f"{owner.image_repo}:100"}, keep_newest=1)
    assert kept.problems == [] and sorted(kept.removed) == [f"{owner.image_repo}:200", f"{owner.image_repo}:300"]
    assert _tags(address, name) == {"100", "400", "500"} and _tags(address, f"{name}-db") == {"latest"}

    # A delete: every tag of every repository of the deployment.
    gone = prune_registry(address, owner, set(), keep_newest=0)
    assert gone.problems == [] and len(gone.removed) == 4, gone
    assert _tags(address, name) == set() and _tags(address, f"{name}-db") == set()

    # Tags are gone, layers are not until the garbage collector runs.
    assert _blobs(tmp_path / "registry") == blobs_full
    subprocess.run(["bash", str(ROOT / "scripts/registry-gc.sh"), str(tmp_path / "registry/config.yml")],
                   check=True, capture_output=True)
    assert _blobs(tmp_path / "registry") == 0


def test_registry_sweep_removes_what_deleted_deployments_left_and_keeps_the_newest_of_the_others(
    engine: docker.DockerClient, address: str, pushed: list[str]
) -> None:
    instance = f"regtest-{uuid4().hex[:8]}"
    alive, deleted, other = Owner(instance, 1, address), Owner(instance, 2, address), Owner("someone-else", 2, address)
    for owner in (alive, deleted, other):
        for tag in ("100", "200"):
            _push(engine, pushed, f"{owner.image_repo}:{tag}", f"{owner.image_repo} {tag}")
    report = sweep_registry(address, instance, {alive.deployment_id: set()}, keep_newest=1)
    assert report.problems == []
    assert _tags(address, alive.image_repo.removeprefix(f"{address}/")) == {"200"}
    assert _tags(address, deleted.image_repo.removeprefix(f"{address}/")) == set()
    # Another installation's images are not this one's to touch.
    assert _tags(address, other.image_repo.removeprefix(f"{address}/")) == {"100", "200"}

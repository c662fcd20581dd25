"""Would BuildKit cache mounts make Portside's builds faster here? Side by side, same engine, same run:

- classic: the generated Dockerfile as Portside renders it, built by the classic builder (`DOCKER_BUILDKIT=0`);
- buildkit: the same file with the dependency install under `RUN --mount=type=cache` (npm's ~/.npm, pip's
  ~/.cache/pip), built by BuildKit through Debian's 20.10 client (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, see
  ../shared/notes/environment.md; the 28.x client on PATH wants buildx, which is not here).

Per fixture and variant: a cold build (no layer cache; BuildKit's cache mount is new and empty, its own id per run),
then a rebuild after a dependency change (a comment appended to the manifest: the install layer is rebuilt, which is
where a cache mount can save the downloads). Writes bench/results/buildkit.json; skipped when /usr/bin/docker is not
the 20.10 client. One run on a shared machine: read the figures as a direction, not a precise ratio."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from services.builder.generate import generate_files
from services.detector.service import detect
from shared.docker import Owner
from tests.conftest import copy_fixture
from tests.support import ROOT

RESULTS = ROOT / "bench" / "results" / "buildkit.json"
CLIENT = "/usr/bin/docker"
# fixture -> (the manifest a dependency change touches, the install line's pattern, the cache directory)
APPS = {
    "python-flask": ("requirements.txt",
                     re.compile(r"^RUN (pip --python \S+ install) --no-cache-dir", re.MULTILINE), "/root/.cache/pip"),
    "node-express": ("package.json", re.compile(r"^RUN (npm ci)", re.MULTILINE), "/root/.npm"),
}


def with_cache_mount(dockerfile: str, pattern: re.Pattern[str], target: str, cache_id: str) -> str:
    """The install under a cache mount (and without pip's --no-cache-dir, which would ignore it)."""
    text, count = pattern.subn(rf"RUN --mount=type=cache,id={cache_id},target={target} \1", dockerfile)
    if count == 0:
        raise RuntimeError(f"no install line matched {pattern.pattern}")
    return text


def client_ok() -> bool:
    if not Path(CLIENT).exists():
        return False
    out = subprocess.run([CLIENT, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True,
                         check=False)
    return out.stdout.startswith("20.10")


def build(source: Path, dockerfile: str, tag: str, buildkit: bool, nocache: bool) -> float:
    (source / "Dockerfile.bench").write_text(dockerfile)
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
    args = [CLIENT, "build", "-q", "-f", "Dockerfile.bench", "-t", tag, "--label", "org.portside.bench=1", "."]
    if nocache:
        args.insert(2, "--no-cache")
    started = time.monotonic()
    done = subprocess.run(args, cwd=source, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"{tag}: {done.stderr[-800:]}")
    return round(time.monotonic() - started, 1)


def measure(source: Path, dockerfile: str, manifest: str, tag: str, buildkit: bool) -> dict:
    cold = build(source, dockerfile, tag, buildkit, nocache=True)
    path = source / manifest
    if manifest.endswith(".json"):  # JSON takes no comment: change a field npm does not resolve anything from
        data = json.loads(path.read_text())
        data["description"] = f"bench {time.time()}"
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(path.read_text() + f"\n# bench {time.time()}\n")
    changed = build(source, dockerfile, tag, buildkit, nocache=False)
    return {"cold_build_s": cold, "rebuild_after_dependency_change_s": changed}


def main() -> dict:
    if not client_ok():
        print(f"skipped: {CLIENT} is not Debian's 20.10 client (BuildKit without buildx)")
        return {}
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="portside-buildkit-bench-") as tmp:
        for fixture, (manifest, pattern, target) in APPS.items():
            tag = f"portside-bench/buildkit-{fixture}-{uuid.uuid4().hex[:8]}"
            try:
                results[fixture] = {}
                for variant in ("classic", "buildkit"):
                    source = copy_fixture(fixture, Path(tmp) / variant)
                    files = generate_files(detect(source), source, owner=Owner("bench", 1), repo_name=fixture)
                    dockerfile = files.dockerfile
                    if variant == "buildkit":
                        dockerfile = with_cache_mount(dockerfile, pattern, target, f"portside-bench-{uuid.uuid4()}")
                    results[fixture][variant] = measure(source, dockerfile, manifest, f"{tag}:{variant}",
                                                        variant == "buildkit")
                    shutil.rmtree(source)
            finally:
                for variant in ("classic", "buildkit"):
                    subprocess.run([CLIENT, "rmi", "-f", f"{tag}:{variant}"], capture_output=True, check=False)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'app':14} {'variant':9} {'cold s':>7} {'after dependency change s':>26}")
    for fixture, variants in results.items():
        for variant, r in variants.items():
            print(f"{fixture:14} {variant:9} {r['cold_build_s']:7} {r['rebuild_after_dependency_change_s']:26}")
    print(f"written to {RESULTS}")
    return results


if __name__ == "__main__":
    main()

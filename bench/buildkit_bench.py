"""Would BuildKit cache mounts make Portside's builds faster here? Interleaved pairs on the same engine:

- classic: the generated Dockerfile as Portside renders it, built by the classic builder (`DOCKER_BUILDKIT=0`);
- buildkit: the same file with the dependency install under `RUN --mount=type=cache` (npm's ~/.npm, pip's
  ~/.cache/pip), built by BuildKit through Debian's 20.10 client (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, see
  ../shared/notes/environment.md; the 28.x client on PATH wants buildx, which is not here).

One run of a variant is three builds of a fresh copy of the fixture: cold (no layer cache; BuildKit's cache mount is
new and empty, its own id per run), after a dependency change (the manifest touched: the install layer is rebuilt,
which is where a cache mount can save the downloads), after a source-only change (the app's code touched: the
install layer is reused by both). The machine is shared (other people's builds and tests come and go), so one
classic run next to one BuildKit run says little: runs are paired and the pairs interleaved in ABBA order
(classic, buildkit, buildkit, classic, ...), so a load that rises or falls during the bench weighs on both. Reported
per app and scenario: the median of the per-pair ratios buildkit / classic (below 1: BuildKit faster) with their
spread (min, max), and the median seconds of each variant. PORTSIDE_BENCH_PAIRS sets the pairs per app (default 3),
PORTSIDE_BENCH_APPS a comma-separated subset. Writes bench/results/buildkit.json after every pair; skipped when
/usr/bin/docker is not the 20.10 client."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
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
SCENARIOS = ("cold_s", "after_dependency_change_s", "after_source_change_s")
# fixture -> (the manifest a dependency change touches, the source file a source change touches,
#             the install line's pattern, the cache directory)
APPS = {
    "python-flask": ("requirements.txt", "app.py",
                     re.compile(r"^RUN (pip --python \S+ install) --no-cache-dir", re.MULTILINE), "/root/.cache/pip"),
    "node-express": ("package.json", "server.js", re.compile(r"^RUN (npm ci)", re.MULTILINE), "/root/.npm"),
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


def build(source: Path, tag: str, buildkit: bool, nocache: bool) -> float:
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
    args = [CLIENT, "build", "-q", "-f", "Dockerfile.bench", "-t", tag, "--label", "org.portside.bench=1", "."]
    if nocache:
        args.insert(2, "--no-cache")
    started = time.monotonic()
    done = subprocess.run(args, cwd=source, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode:
        raise RuntimeError(f"{tag}: {done.stderr[-800:]}")
    return round(time.monotonic() - started, 1)


def touch(path: Path) -> None:
    """A change the build sees (a new checksum) that leaves what gets installed or run the same."""
    if path.suffix == ".json":  # JSON takes no comment: change a field npm resolves nothing from
        data = json.loads(path.read_text())
        data["description"] = f"bench {time.time()}"
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(path.read_text() + f"\n# bench {time.time()}\n")


def run(tmp: Path, fixture: str, variant: str, tag: str) -> dict:
    """Cold, after a dependency change, after a source-only change: one fresh copy, one variant."""
    manifest, source_file, pattern, target = APPS[fixture]
    source = copy_fixture(fixture, tmp / f"{variant}-{uuid.uuid4().hex[:6]}")
    try:
        dockerfile = generate_files(detect(source), source, owner=Owner("bench", 1), repo_name=fixture).dockerfile
        if variant == "buildkit":
            dockerfile = with_cache_mount(dockerfile, pattern, target, f"portside-bench-{uuid.uuid4()}")
        (source / "Dockerfile.bench").write_text(dockerfile)
        load = round(os.getloadavg()[0], 1)
        figures = {"load_1min": load, "cold_s": build(source, tag, variant == "buildkit", nocache=True)}
        touch(source / manifest)
        figures["after_dependency_change_s"] = build(source, tag, variant == "buildkit", nocache=False)
        touch(source / source_file)
        figures["after_source_change_s"] = build(source, tag, variant == "buildkit", nocache=False)
        return figures
    finally:
        shutil.rmtree(source.parent, ignore_errors=True)


def summary(pairs: list[dict]) -> dict:
    out: dict = {}
    for scenario in SCENARIOS:
        ratios = [round(p["buildkit"][scenario] / p["classic"][scenario], 2) for p in pairs]
        out[scenario] = {
            "classic_median_s": round(statistics.median(p["classic"][scenario] for p in pairs), 1),
            "buildkit_median_s": round(statistics.median(p["buildkit"][scenario] for p in pairs), 1),
            "ratio_median": round(statistics.median(ratios), 2),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "ratios": ratios,
        }
    return out


def write(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def main() -> dict:
    if not client_ok():
        print(f"skipped: {CLIENT} is not Debian's 20.10 client (BuildKit without buildx)")
        return {}
    count = int(os.environ.get("PORTSIDE_BENCH_PAIRS", "3"))
    apps = [a for a in os.environ.get("PORTSIDE_BENCH_APPS", ",".join(APPS)).split(",") if a]
    results: dict = {"pairs_per_app": count, "order": "ABBA (classic first in even pairs)", "apps": {}}
    with tempfile.TemporaryDirectory(prefix="portside-buildkit-bench-") as tmp:
        for fixture in apps:
            tag = f"portside-bench/buildkit-{fixture}-{uuid.uuid4().hex[:8]}"
            pairs: list[dict] = []
            try:
                for index in range(count):
                    order = ("classic", "buildkit") if index % 2 == 0 else ("buildkit", "classic")
                    pair = {variant: run(Path(tmp), fixture, variant, f"{tag}:{variant}") for variant in order}
                    pairs.append(pair)
                    results["apps"][fixture] = {"pairs": pairs, "summary": summary(pairs)}
                    write(results)
                    print(f"{fixture} pair {index + 1}/{count}: {json.dumps(pair)}", flush=True)
            finally:
                for variant in ("classic", "buildkit"):
                    subprocess.run([CLIENT, "rmi", "-f", f"{tag}:{variant}"], capture_output=True, check=False)
    print(f"{'app':14} {'scenario':27} {'classic s':>9} {'buildkit s':>10} {'ratio (min-max)':>18}")
    for fixture, data in results["apps"].items():
        for scenario, s in data["summary"].items():
            spread = f"{s['ratio_median']} ({s['ratio_min']}-{s['ratio_max']})"
            print(f"{fixture:14} {scenario:27} {s['classic_median_s']:9} {s['buildkit_median_s']:10} {spread:>18}")
    print(f"written to {RESULTS}")
    return results


if __name__ == "__main__":
    main()

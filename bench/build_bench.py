"""Build figures of the generated Dockerfiles next to a naive single-stage Dockerfile (`COPY . .` then install),
measured in the same run on the same engine (classic builder, local base images):

- cold build: no layer cache for the app (base image present), dependencies downloaded;
- rebuild after a source-only change (one line appended to the app's entry file), layer cache warm;
- image size, and its overhead over the runtime base image.

Writes bench/results/build.json. Target: a rebuild under 15% of the cold build."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker

from services.builder.dockerfile import render_dockerignore
from services.builder.generate import generate_files
from services.detector.service import detect
from shared.docker import Owner
from shared.docker.build import build_context
from shared.docker.dockerfile import parse_dockerfile
from tests.conftest import copy_fixture
from tests.support import ROOT


def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(line, KEYWORD, arguments) as the one Dockerfile reader sees them."""
    return [(i.line, i.keyword, i.args) for i in parse_dockerfile(text).instructions]

RESULTS = ROOT / "bench" / "results" / "build.json"
LABEL = "org.portside.bench"
# fixture -> (the file a source-only change touches, the naive single-stage Dockerfile)
APPS = {
    "python-flask": ("app.py", (
        "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\n"
        "RUN pip install --no-cache-dir -r requirements.txt gunicorn\n"
        'CMD ["gunicorn", "--bind", "0.0.0.0:8000", "app:app"]\n')),
    "node-express": ("server.js", (
        "FROM node:20-slim\nWORKDIR /app\nCOPY . .\nRUN npm install\n"
        'CMD ["npm", "start"]\n')),
}


def build(
    engine: docker.DockerClient, source: Path, dockerfile: str, tag: str, ignore: list[str], nocache: bool
) -> float:
    context = build_context(str(source), ".bench/Dockerfile", dockerfile, ignore)
    started = time.monotonic()
    for chunk in engine.api.build(fileobj=context, custom_context=True, dockerfile=".bench/Dockerfile", tag=tag,
                                  labels={LABEL: "1"}, rm=True, forcerm=True, decode=True, pull=False, nocache=nocache):
        if "error" in chunk:
            raise RuntimeError(f"{tag}: {chunk['error']}")
    return round(time.monotonic() - started, 2)


def runtime_base(dockerfile: str) -> str:
    return [a.split()[0] for _, w, a in dockerfile_instructions(dockerfile) if w == "FROM"][-1]


def measure(
    engine: docker.DockerClient, source: Path, touched: str, dockerfile: str, tag: str, ignore: list[str]
) -> dict:
    cold = build(engine, source, dockerfile, tag, ignore, nocache=True)
    with (source / touched).open("a") as handle:
        handle.write(f"\n// bench {time.time()}\n" if touched.endswith(".js") else f"\n# bench {time.time()}\n")
    rebuild = build(engine, source, dockerfile, tag, ignore, nocache=False)
    size = engine.images.get(tag).attrs["Size"]
    base = runtime_base(dockerfile)
    if base.lower() == "base":  # a stage name: the stage's own FROM
        base = next(a.split()[0] for _, w, a in dockerfile_instructions(dockerfile) if w == "FROM")
    base_size = engine.images.get(base).attrs["Size"]
    return {
        "cold_build_s": cold,
        "rebuild_after_source_change_s": rebuild,
        "rebuild_pct_of_cold": round(100 * rebuild / cold, 1) if cold else None,
        "image_mb": round(size / 1e6, 1),
        "base_image": base,
        "overhead_over_base_mb": round((size - base_size) / 1e6, 1),
    }


def main() -> dict:
    engine = docker.from_env(timeout=900)
    results: dict = {}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="portside-build-bench-") as tmp:
        for fixture, (touched, naive) in APPS.items():
            tags = [f"portside-bench/{fixture}:generated", f"portside-bench/{fixture}:naive"]
            try:
                generated_dir = copy_fixture(fixture, Path(tmp) / "generated")
                naive_dir = copy_fixture(fixture, Path(tmp) / "naive")
                files = generate_files(detect(generated_dir), generated_dir, owner=Owner("bench", 1), repo_name=fixture)
                ignore = [ln for ln in render_dockerignore(generated_dir).splitlines() if ln and not ln.startswith("#")]
                results[fixture] = {
                    "generated": measure(engine, generated_dir, touched, files.dockerfile, tags[0], ignore),
                    "naive": measure(engine, naive_dir, touched, naive, tags[1], [".git", "node_modules"]),
                }
            finally:
                for tag in tags:
                    try:
                        engine.images.remove(tag, force=True)
                    except docker.errors.ImageNotFound:
                        pass
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{'app':14} {'variant':10} {'cold s':>7} {'rebuild s':>10} {'% of cold':>9} {'size MB':>8} "
        f"{'over base MB':>12}"
    )
    for fixture, variants in results.items():
        for variant, r in variants.items():
            print(f"{fixture:14} {variant:10} {r['cold_build_s']:7} {r['rebuild_after_source_change_s']:10} "
                  f"{r['rebuild_pct_of_cold']:9} {r['image_mb']:8} {r['overhead_over_base_mb']:12}")
    print(f"written to {RESULTS}")
    return results


if __name__ == "__main__":
    main()

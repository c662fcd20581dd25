"""Detection speed: time per repo (median, p95) in-process over every fixture, and over one generated tree of
100k files (built in a temp dir at run time). Prints a table and writes bench/results/detect.json.

Usage: python bench/detect_bench.py [--rounds N] [--files N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.detector.service import detect
from shared.source import MAX_FILES, SourceTree

FIXTURES = ROOT / "tests" / "fixtures" / "repos"
RESULTS = ROOT / "bench" / "results" / "detect.json"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def time_detect(path: Path, app_path: str = "", rounds: int = 5) -> list[float]:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        detect(path, app_path)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def time_cli(names: list[str]) -> dict | None:
    """`portside detect PATH --json` as a user runs it, when the CLI is installed in the venv."""
    exe = Path(sys.executable).parent / "portside"
    if not exe.exists() or not names:
        return None
    timings = []
    for name in names:
        app_path = json.loads((FIXTURES / name / "expected.json").read_text()).get("app_path", "")
        cmd = [str(exe), "detect", str(FIXTURES / name), "--json"] + (["--app-path", app_path] if app_path else [])
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False)
        timings.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            return {"error": done.stderr.decode(errors="replace")[-500:]}
    return {"repos": len(timings), "median_ms": statistics.median(timings), "p95_ms": percentile(timings, 95),
            "max_ms": max(timings)}


def generate_tree(root: Path, files: int) -> Path:
    """A Flask app with `files` Python files in nested packages (the Python provider scans source for the app
    object, so this is its worst case), a package.json beside it, and a node_modules that must be skipped."""
    (root / "requirements.txt").write_text("flask==3.0.3\ngunicorn==22.0.0\n")
    (root / "package.json").write_text(json.dumps({"name": "assets", "scripts": {"build": "vite build"}}))
    per_dir = 100
    for i in range(files // per_dir):
        d = root / f"area{i // 50}" / f"mod{i}"
        d.mkdir(parents=True, exist_ok=True)
        for j in range(per_dir):
            (d / f"file{j}.py").write_text("")
    (root / "app.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    nm = root / "node_modules" / "dep"
    nm.mkdir(parents=True)
    for j in range(1000):
        (nm / f"f{j}.js").write_text("")
    return root


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--cli-repos", type=int, default=12, help="fixtures to time through `portside detect`")
    args = parser.parse_args()

    per_repo: dict[str, float] = {}
    all_timings: list[float] = []
    for fixture in sorted(p for p in FIXTURES.iterdir() if (p / "expected.json").is_file()):
        app_path = json.loads((fixture / "expected.json").read_text()).get("app_path", "")
        detect(fixture, app_path)  # warm imports and the OS cache
        timings = time_detect(fixture, app_path, args.rounds)
        per_repo[fixture.name] = statistics.median(timings)
        all_timings += timings
    medians = list(per_repo.values())
    fixtures = {"repos": len(per_repo), "median_ms": statistics.median(medians), "p95_ms": percentile(medians, 95),
                "max_ms": max(medians), "slowest": max(per_repo, key=per_repo.__getitem__)}

    with tempfile.TemporaryDirectory(prefix="portside-bench-") as tmp:
        t0 = time.perf_counter()
        tree = generate_tree(Path(tmp), args.files)
        gen_s = time.perf_counter() - t0
        big = time_detect(tree, rounds=3)
        det = detect(tree)
        walks = []
        for _ in range(3):  # a full bounded walk, as a repo with no manifest would need
            start = time.perf_counter()
            walked = len(SourceTree(tree).files())
            walks.append((time.perf_counter() - start) * 1000)
    huge = {"files": args.files, "median_ms": statistics.median(big), "p95_ms": percentile(big, 95),
            "generate_s": round(gen_s, 1), "stack": det.stack, "start_command": det.start_command,
            "full_walk_ms": statistics.median(walks), "full_walk_files": walked}

    cli = time_cli(sorted(per_repo)[:: max(1, len(per_repo) // max(1, args.cli_repos))][: args.cli_repos])

    print(f"{'set':<24}{'repos':>7}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    print(f"{'fixtures (in-process)':<24}{fixtures['repos']:>7}{fixtures['median_ms']:>12.2f}"
          f"{fixtures['p95_ms']:>10.2f}{fixtures['max_ms']:>10.2f}   slowest: {fixtures['slowest']}")
    print(f"{'generated ' + str(args.files) + ' files':<24}{1:>7}{huge['median_ms']:>12.1f}{huge['p95_ms']:>10.1f}"
          f"{max(big):>10.1f}   -> {det.stack} / {det.start_command}")
    print(f"{'  full bounded walk':<24}{1:>7}{huge['full_walk_ms']:>12.1f}{max(walks):>10.1f}{max(walks):>10.1f}"
          f"   ({walked} files listed, limit {MAX_FILES} entries)")
    if cli:
        print(f"{'fixtures (CLI, --json)':<24}{cli['repos']:>7}{cli['median_ms']:>12.1f}{cli['p95_ms']:>10.1f}"
              f"{cli['max_ms']:>10.1f}   (a new process each: mostly interpreter start-up and imports)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"in_process": {"fixtures": fixtures, "per_repo_median_ms": per_repo,
                                                  "generated_tree": huge}, "cli": cli}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

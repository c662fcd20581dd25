"""CLI start-up: the median wall time per call of the `portside` commands a user runs most, next to
`python -c pass` (the floor every Python CLI pays). Most of a short command's time is imports, so this is the
figure that shows whether `detect`, `status` and `logs` stay clear of the server stack. `status` and `logs` are
pointed at a port nothing listens on: they start, try the API once and exit, which is exactly start-up plus one
refused connection. Prints a table and writes bench/results/cli.json.

Usage: python -m bench.cli_bench [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "repos" / "node-express"
RESULTS = ROOT / "bench" / "results" / "cli.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def median_ms(cmd: list[str], rounds: int, ok: set[int]) -> tuple[float, float]:
    """(median wall ms, median CPU ms) per call. CPU time (user + system of the child) moves much less than wall
    time when the machine is shared, so it is the figure to compare between runs."""
    # This tree's code, also when the venv's `portside` is an editable install of another checkout.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    walls, cpus = [], []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False, env=env, cwd=ROOT)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if done.returncode not in ok:
            raise SystemExit(f"{cmd} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "portside"
    cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "services.cli.main"]
    api = f"http://127.0.0.1:{free_port()}"
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], {0}),
        "portside detect --json": (cli + ["detect", str(FIXTURE), "--json"], {0}),
        "portside status": (cli + ["status", "1", "--api", api], {1}),
        "portside logs": (cli + ["logs", "1", "--api", api], {1}),
    }
    measured = {name: median_ms(cmd, args.rounds, ok) for name, (cmd, ok) in commands.items()}
    figures = {name: round(wall, 1) for name, (wall, _) in measured.items()}
    cpu = {name: round(c, 1) for name, (_, c) in measured.items()}
    print(f"{'command':28} {'wall ms':>10} {'cpu ms':>10} {'cpu over python':>16}")
    for name in measured:
        print(f"{name:28} {figures[name]:10.1f} {cpu[name]:10.1f} {cpu[name] - cpu['python -c pass']:16.1f}")
    result = {"rounds": args.rounds, "fixture": FIXTURE.name, "cpus": os.cpu_count(), "median_ms": figures,
              "median_cpu_ms": cpu, "load_average": os.getloadavg(),
              "note": "per call, subprocess start included; wall time swings with a shared machine, CPU time less"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

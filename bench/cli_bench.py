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


def median_ms(cmd: list[str], rounds: int, ok: set[int]) -> float:
    # This tree's code, also when the venv's `portside` is an editable install of another checkout.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False, env=env, cwd=ROOT)
        timings.append((time.perf_counter() - start) * 1000)
        if done.returncode not in ok:
            raise SystemExit(f"{cmd} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    return statistics.median(timings)


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
    figures = {name: round(median_ms(cmd, args.rounds, ok), 1) for name, (cmd, ok) in commands.items()}
    floor = figures["python -c pass"]
    print(f"{'command':28} {'median ms':>10} {'over python':>12}")
    for name, value in figures.items():
        print(f"{name:28} {value:10.1f} {value - floor:12.1f}")
    result = {"rounds": args.rounds, "fixture": FIXTURE.name, "cpus": os.cpu_count(), "median_ms": figures,
              "note": "wall time per call, subprocess start included; the machine may be shared"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

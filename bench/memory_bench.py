"""Idle memory of the control plane: `portside up` (one process per service) next to `portside up
--single-process`, each with its embedded nats-server and PostgreSQL, measured side by side in one run.

The figure is PSS (proportional set size: shared pages split among the processes sharing them, so a sum over
processes counts every page once) of the whole tree, from /proc/<pid>/smaps_rollup: the `portside up` process,
every descendant (services, nats-server) and PostgreSQL's postmaster with its children (pg_ctl daemonises it, so
it is not a descendant). Sampled after the system has been idle for a while. Writes bench/results/memory.json."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import docker

from tests.support import ROOT, running_system

RESULTS = ROOT / "bench" / "results" / "memory.json"
SETTLE_S = 20
SAMPLES = 5


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name may hold spaces and parentheses: the ppid is the 2nd field after the last ')'.
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(roots: list[int]) -> list[int]:
    tree = _children()
    seen: list[int] = []
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(tree.get(pid, []))
    return seen


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in argv if w]
    if "-m" in words:
        return words[words.index("-m") + 1]
    return Path(words[0]).name if words else "?"


def measure(home: Path, up_pid: int) -> dict:
    roots = [up_pid]
    postmaster = home / "postgres" / "postmaster.pid"
    if postmaster.exists():
        roots.append(int(postmaster.read_text().splitlines()[0]))
    samples: list[int] = []
    parts: dict[str, int] = {}
    for _ in range(SAMPLES):
        pids = process_tree(roots)
        per = {pid: pss_kb(pid) for pid in pids}
        samples.append(sum(per.values()))
        parts = {}
        for pid, kb in per.items():
            name = command(pid)
            parts[name] = parts.get(name, 0) + kb
        time.sleep(2)
    return {
        "pss_mb": round(statistics.median(samples) / 1024, 1),
        "processes": len(process_tree(roots)),
        "by_command_mb": {k: round(v / 1024, 1) for k, v in sorted(parts.items(), key=lambda kv: -kv[1])},
    }


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-mem-"))
    results: dict[str, object] = {"settle_s": SETTLE_S, "samples": SAMPLES}
    for mode, args in (("default", []), ("single_process", ["--single-process"])):
        home = work / mode
        with running_system(home, engine, args=args) as system:
            time.sleep(SETTLE_S)
            results[mode] = measure(home, system.process.pid)
        print(f"{mode}: {results[mode]['pss_mb']} MB PSS over {results[mode]['processes']} processes "  # type: ignore[index]
              f"{results[mode]['by_command_mb']}")  # type: ignore[index]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()

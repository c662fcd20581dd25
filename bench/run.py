"""`make bench`: every benchmark, each writing its figures to bench/results/<name>.json."""

from __future__ import annotations

import importlib.util
import runpy

BENCHES = [
    "bench.cli_bench",
    "bench.detect_bench",
    "bench.dockerfile_corpus",
    "bench.build_bench",
    "bench.build_limits_bench",
    "bench.buildkit_bench",
    "bench.deploy_bench",
    "bench.lifecycle_bench",
    "bench.swarm_bench",
    "bench.swarm_multinode_bench",
    "bench.proxy_bench",
    "bench.memory_bench",
    "bench.compose_bench",
    "bench.auth_bench",
    "bench.metrics_bench",
    "bench.web_bench",
    "bench.events_bench",
    # the public apps of bench/realworld/manifest.yaml found in a local mirror (none: skipped)
    "bench.realworld.run",
]

if __name__ == "__main__":
    for name in BENCHES:
        if importlib.util.find_spec(name) is None:
            continue
        print(f"\n== {name}")
        runpy.run_module(name, run_name="__main__")

"""Deploys per minute on the containerised stack (deploy/compose.yaml from `make images`' portside:local) with
1 and then 3 builder replicas, side by side in one run, each over the same number of concurrent deploys of a
small app after a warm-up deploy (so the figure measures the pipeline, not pip). Writes bench/results/compose.json."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import docker

from tests.compose_support import compose_stack, git_daemon
from tests.support import ROOT, System

RESULTS = ROOT / "bench" / "results" / "compose.json"
DEPLOYS = 6


def deploys_per_minute(system: System, repo_id: int) -> float:
    generate = f"/api/deployments/generate/{repo_id}"
    ids = [system.call("POST", generate, json={})["data"]["deployment_id"] for _ in range(DEPLOYS)]
    started = time.monotonic()
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    for deployment_id in ids:
        state = system.wait_status(deployment_id, {"running", "crashed", "error", "build_failed"}, timeout=900)
        assert state["status"] == "running", state
    elapsed = time.monotonic() - started
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=180)
    return DEPLOYS / elapsed * 60


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-compose-"))
    with compose_stack(engine, work) as stack, git_daemon(stack, engine, work / "git", "python-flask") as url:
        system = stack.system
        repo_id = system.call("POST", "/api/repositories", json={"url": url}, timeout=120)["data"]["id"]
        warm = system.call("POST", f"/api/deployments/generate/{repo_id}", json={})["data"]["deployment_id"]
        started = time.monotonic()
        assert system.deploy(warm)["status"] == "running"
        first_deploy_s = time.monotonic() - started
        system.call("POST", f"/api/deployments/{warm}/stop", params={"wait": "true"}, timeout=180)
        one = deploys_per_minute(system, repo_id)
        stack.scale(engine, "builder", 3)
        three = deploys_per_minute(system, repo_id)
    results = {"warmup_deploy_s": round(first_deploy_s, 1), "deploys": DEPLOYS,
               "deploys_per_minute": {"builder_x1": round(one, 1), "builder_x3": round(three, 1),
                                      "ratio_x3_over_x1": round(three / one, 2)}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"containerised stack: warm-up deploy {first_deploy_s:.1f} s; deploys per minute: 1 builder {one:.1f}, "
          f"3 builders {three:.1f} (x{three / one:.2f})")
    return results


if __name__ == "__main__":
    main()

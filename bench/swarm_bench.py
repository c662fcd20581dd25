"""Swap time on Swarm (PORTSIDE_ENGINE=swarm, a single-node swarm on this engine, Debian's docker-registry on
loopback): redeploys of a running app, each a start-first swap gated by the task's health check. Per redeploy:
the whole call (build, push, swap, Swarm's monitor window), the swap itself (from the first answer of the new
version to the old task leaving the running set), and requests that failed meanwhile (every 50 ms, to the tasks
Swarm lists as running: this kernel has no IPVS, so not through the routing mesh). Writes
bench/results/swarm.json."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import docker

from tests.conftest import copy_fixture
from tests.support import ROOT, running_system
from tests.swarm_support import SwapWatch, app_service, registry, remove_instance_stacks, swarm_mode

RESULTS = ROOT / "bench" / "results" / "swarm.json"
REDEPLOYS = 3


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-swarm-"))
    rows = []
    try:
        with registry(work / "registry") as address, swarm_mode(engine):
            env = {"PORTSIDE_ENGINE": "swarm", "PORTSIDE_REGISTRY": address, "PORTSIDE_SWARM_MONITOR_SECONDS": "5",
                   "PORTSIDE_SWARM_PUBLISH": "mesh"}
            with running_system(work / "home", engine, extra_env=env) as system:
                try:
                    source = copy_fixture("python-flask", work / "app")
                    deployment_id = system.deploy_path(source)["deployment_id"]
                    assert system.deploy(deployment_id)["status"] == "running"
                    internal = int(system.call("GET", f"/api/deployments/{deployment_id}")["data"]["internal_port"])
                    service = app_service(engine, system.instance, deployment_id)
                    app = source / "app.py"
                    good = app.read_text()
                    for version in range(1, REDEPLOYS + 1):
                        app.write_text(good.replace("hello from flask", f"hello from flask v{version}"))
                        watch = SwapWatch(engine, service, internal)
                        poller = threading.Thread(target=watch.run, daemon=True)
                        poller.start()
                        started = time.monotonic()
                        outcome = system.deploy(deployment_id)
                        call = time.monotonic() - started
                        watch.stop.set()
                        poller.join(10)
                        assert outcome["status"] == "running", outcome
                        marker = f"v{version}"
                        new = [t for t, text in watch.answers if marker in text]
                        old = [t for t, text in watch.answers if marker not in text]
                        swap = (max(old) - min(new)) if new and old and max(old) > min(new) else 0.0
                        rows.append({
                            "redeploy_seconds": round(call, 2),
                            "new_version_first_answer_seconds": round(min(new) - started, 2) if new else None,
                            "both_versions_answering_seconds": round(swap, 2),
                            "polls": watch.samples, "failed_requests": len(watch.failures),
                        })
                        print(f"redeploy {version}: {rows[-1]}")
                    system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
                finally:
                    remove_instance_stacks(engine, system.instance)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "redeploys": rows,
        "median_redeploy_seconds": statistics.median(r["redeploy_seconds"] for r in rows),
        "failed_requests": sum(r["failed_requests"] for r in rows),
        "note": "single-node swarm on a shared 2-core machine; polled per task every 50 ms, not through the "
                "routing mesh (no IPVS in this kernel)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

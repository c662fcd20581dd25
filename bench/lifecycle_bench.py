"""How fast Portside notices a killed container, and deploys per minute with 1 vs 3 runner replicas,
measured side by side in one run. Writes bench/results/lifecycle.json."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker

from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE
from tests.conftest import copy_fixture
from tests.support import ROOT, System, running_system

RESULTS = ROOT / "bench" / "results" / "lifecycle.json"
KILLS = 5
DEPLOYS = 12


def notice_times(system: System, engine: docker.DockerClient, work: Path) -> list[float]:
    """Seconds from `docker kill` of a running app to its deployment reading `crashed`."""
    source = copy_fixture("python-flask", work / "notice")
    times = []
    for _ in range(KILLS):
        deployment_id = system.deploy_path(source)["deployment_id"]
        assert system.deploy(deployment_id)["status"] == "running"
        labels = [f"{LABEL_INSTANCE}={system.instance}", f"{LABEL_DEPLOYMENT}={deployment_id}"]
        (container,) = engine.containers.list(filters={"label": labels})
        killed = time.monotonic()
        container.kill()
        while system.call("GET", f"/api/deployments/{deployment_id}")["data"]["status"] != "crashed":
            time.sleep(0.02)
        times.append(time.monotonic() - killed)
    return times


def deploys_per_minute(system: System, work: Path, tag: str) -> float:
    source = copy_fixture("python-flask", work / tag)
    ids = [system.deploy_path(source)["deployment_id"] for _ in range(DEPLOYS)]
    system.deploy(ids[0])  # warm the layer cache, so the figure measures starting, not pip
    system.call("POST", f"/api/deployments/{ids[0]}/stop", params={"wait": "true"})
    started = time.monotonic()
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/deploy")
    for deployment_id in ids:
        state = system.wait_status(deployment_id, {"running", "crashed", "error", "build_failed"}, timeout=900)
        assert state["status"] == "running", state
    elapsed = time.monotonic() - started
    for deployment_id in ids:
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    return DEPLOYS / elapsed * 60


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-"))
    results: dict[str, object] = {}
    with running_system(work / "home1", engine) as system:
        kills = notice_times(system, engine, work)
        results["killed_container_noticed_s"] = {
            "median": round(statistics.median(kills), 3),
            "max": round(max(kills), 3),
            "samples": [round(k, 3) for k in kills],
        }
        one = deploys_per_minute(system, work, "one")
    with running_system(work / "home3", engine, args=["--replicas", "runner=3"]) as system:
        three = deploys_per_minute(system, work, "three")
    results["deploys_per_minute"] = {"runner_x1": round(one, 1), "runner_x3": round(three, 1),
                                     "ratio_x3_over_x1": round(three / one, 2), "deploys": DEPLOYS}
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"killed container noticed: median {results['killed_container_noticed_s']['median']} s "  # type: ignore[index]
          f"(max {results['killed_container_noticed_s']['max']} s) over {KILLS} kills")  # type: ignore[index]
    print(f"deploys per minute: 1 runner {one:.1f}, 3 runners {three:.1f} (x{three / one:.2f})")
    return results


if __name__ == "__main__":
    main()

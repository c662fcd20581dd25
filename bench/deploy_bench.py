"""Time from `deploy` to the first HTTP 200, through Portside's whole pipeline, next to `docker build` +
`docker run` of the same generated Dockerfile by hand, measured side by side in one run.

Both sides run with a warm layer cache (one priming build first), so the figure compares orchestration,
not pip or npm downloads. Writes bench/results/deploy.json."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import docker
import httpx

from shared.net import free_tcp_port
from tests.conftest import copy_fixture
from tests.support import ROOT, running_system

APPS = {"python-flask": 8000, "node-express": 3000}
ROUNDS = 3
RESULTS = ROOT / "bench" / "results" / "deploy.json"


def first_200(url: str, started: float, timeout: float = 300) -> float:
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} never answered 200")


def by_hand(app_dir: Path, internal_port: int, tag: str) -> float:
    """`docker build` (classic builder) + `docker run -p`, timed to the first 200."""
    context = Path(tempfile.mkdtemp())
    shutil.copytree(app_dir, context / "app", ignore=shutil.ignore_patterns(".deployment"))
    shutil.copy(app_dir / ".deployment" / ".dockerignore", context / "app" / ".dockerignore")
    shutil.copy(app_dir / ".deployment" / "Dockerfile", context / "app" / "Dockerfile")
    port = free_tcp_port()
    started = time.monotonic()
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context / "app")], check=True, capture_output=True,
                   env={"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"})
    container = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:{internal_port}", tag],
                               check=True, capture_output=True, text=True).stdout.strip()
    try:
        return first_200(f"http://127.0.0.1:{port}/", started)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        shutil.rmtree(context, ignore_errors=True)


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-"))
    results: dict[str, dict] = {}
    with running_system(work / "home", engine) as system:
        for app, internal_port in APPS.items():
            portside_times, hand_times = [], []
            for round_ in range(ROUNDS + 1):  # round 0 primes the layer cache for both
                source = copy_fixture(app, work / f"{app}-{round_}")
                generated = system.deploy_path(source)
                deployment_id = generated["deployment_id"]
                started = time.monotonic()
                system.call("POST", f"/api/deployments/{deployment_id}/deploy")
                port = None
                while port is None:
                    data = system.call("GET", f"/api/deployments/{deployment_id}")["data"]
                    if data["status"] in ("build_failed", "crashed", "error"):
                        raise RuntimeError(f"{app}: {data['status']} {data['error_message']}")
                    port = data["assigned_port"] if data["status"] in ("starting", "running") else None
                    time.sleep(0.05)
                elapsed = first_200(f"http://127.0.0.1:{port}/", started)
                system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"}, timeout=120)
                hand = by_hand(source, internal_port, f"portside-bench/{app}:{round_}")
                if round_:
                    portside_times.append(elapsed)
                    hand_times.append(hand)
            for round_ in range(ROUNDS + 1):
                subprocess.run(
                    ["docker", "rmi", "-f", f"portside-bench/{app}:{round_}"], capture_output=True, check=False
                )
            p, h = statistics.median(portside_times), statistics.median(hand_times)
            results[app] = {
                "portside_deploy_to_200_s": round(p, 2),
                "hand_build_run_to_200_s": round(h, 2),
                "ratio_portside_over_hand": round(p / h, 2),
                "rounds": ROUNDS,
                "portside_samples_s": [round(x, 2) for x in portside_times],
                "hand_samples_s": [round(x, 2) for x in hand_times],
            }
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'app':<14} {'portside deploy->200':>22} {'docker build+run->200':>23} {'ratio':>7}")
    for app, row in results.items():
        print(f"{app:<14} {row['portside_deploy_to_200_s']:>20.2f} s {row['hand_build_run_to_200_s']:>21.2f} s "
              f"{row['ratio_portside_over_hand']:>7.2f}")
    return results


if __name__ == "__main__":
    main()

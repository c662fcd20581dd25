"""The reverse proxy, in one run: how long a zero-downtime redeploy takes and how many requests a client polling
every 20 ms through the proxy loses during it (goal: zero), and what the proxy adds per request next to reaching
the app directly. Writes bench/results/proxy.json."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker
import httpx

from shared.docker import LABEL_DEPLOYMENT, LABEL_INSTANCE
from shared.docker.containers import container_address
from tests.conftest import copy_fixture
from tests.support import ROOT, Poller, Proxied, proxy_env, running_system

RESULTS = ROOT / "bench" / "results" / "proxy.json"
REDEPLOYS = 3
REQUESTS = 300
NAME = "bench.portside.test"


def _latencies_ms(client: httpx.Client, request: httpx.Request) -> list[float]:
    client.send(request)  # connection and TLS session set up outside the figures
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        resp = client.send(request)
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text
    return times


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median_ms": round(statistics.median(ordered), 3), "p95_ms": round(ordered[int(len(ordered) * 0.95)], 3)}


def main() -> dict:
    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-bench-proxy-"))
    env = proxy_env()
    results: dict[str, object] = {}
    with running_system(work / "home", engine, extra_env=env) as system:
        proxied = Proxied(system, int(env["PORTSIDE_PROXY_HTTPS_PORT"]), int(env["PORTSIDE_PROXY_HTTP_PORT"]))
        source = copy_fixture("python-flask", work)
        app = source / "app.py"
        deployment_id = system.deploy_path(source)["deployment_id"]
        system.call("PUT", f"/api/deployments/{deployment_id}/domains", json={"domains": [NAME]})
        first = system.deploy(deployment_id)
        assert first["status"] == "running", first

        swaps = []
        for version in range(1, REDEPLOYS + 1):
            app.write_text(app.read_text().replace("hello from flask", f"hello from flask v{version}", 1)
                           if version == 1 else app.read_text().replace(f"v{version - 1}", f"v{version}"))
            poller = Poller(proxied, NAME)
            started = time.monotonic()
            try:
                result = system.deploy(deployment_id)
                redeploy = time.monotonic() - started
                time.sleep(0.3)
            finally:
                poller.finish()
            assert result["status"] == "running" and result["error_code"] is None, result
            swaps.append({"redeploy_s": round(redeploy, 2), "requests": len(poller.answers) + len(poller.failures),
                          "lost": len(poller.failures)})
        results["redeploy"] = {
            "median_redeploy_s": statistics.median(s["redeploy_s"] for s in swaps),
            "requests_lost": sum(s["lost"] for s in swaps),
            "requests_made": sum(s["requests"] for s in swaps),
            "samples": swaps,
            "note": "redeploy_s is the whole deploy?wait=true call: build (cached dependencies), start beside the "
                    "old container, health (the generated HEALTHCHECK's first check comes after 10 s), switch, "
                    f"drain ({env['PORTSIDE_DRAIN_SECONDS']} s)",
        }

        labels = [f"{LABEL_INSTANCE}={system.instance}", f"{LABEL_DEPLOYMENT}={deployment_id}"]
        (container,) = engine.containers.list(filters={"label": labels})
        direct = f"http://{container_address(container)}:8000/"
        with proxied.client() as tls, httpx.Client(timeout=10) as plain:
            by_name = _latencies_ms(tls, tls.build_request(
                "GET", f"https://127.0.0.1:{proxied.https_port}/", headers={"Host": NAME},
                extensions={"sni_hostname": NAME}))
            host_port = _latencies_ms(plain, plain.build_request("GET", f"http://127.0.0.1:{first['port']}/"))
            container_direct = _latencies_ms(plain, plain.build_request("GET", direct))
        results["per_request"] = {
            "https_by_name_through_caddy": _summary(by_name),
            "host_port_through_caddy": _summary(host_port),
            "container_direct": _summary(container_direct),
            "requests_each": REQUESTS,
            "caddy_overhead_median_ms": round(statistics.median(host_port) - statistics.median(container_direct), 3),
        }
        system.call("POST", f"/api/deployments/{deployment_id}/stop", params={"wait": "true"})
    shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

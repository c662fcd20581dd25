"""The cost of /metrics scraping under load: requests per second on GET /api/deployments (1000 deployments, a
personal API token) with no scraper, and with a scraper reading the API's /metrics every 100 ms, in one run with
the two modes interleaved; plus how long a scrape takes while the API is loaded. Writes bench/results/metrics.json.
Seeding, the API process and the load are bench/auth_bench.py's."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.auth_bench import API_TOKEN, DEPLOYMENTS, REQUESTS_PER_THREAD, THREADS, rate, seed, start_api
from shared.embedded import start_nats, start_postgres
from shared.migrations import upgrade
from shared.net import free_tcp_port
from tests.support import ROOT

RESULTS = ROOT / "bench" / "results" / "metrics.json"
ROUNDS = 3
SCRAPE_EVERY = 0.1
METRICS_TOKEN = "bench-metrics-token-0123456789"


class Scraper(threading.Thread):
    """GET /metrics every SCRAPE_EVERY seconds (a scrape that takes longer starts the next one at once)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stopping = threading.Event()
        self.seconds: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30) as http:
            while not self.stopping.is_set():
                started = time.monotonic()
                resp = http.get(self.url)
                self.seconds.append(time.monotonic() - started)
                if resp.status_code != 200 or "portside_http_requests_total" not in resp.text:
                    self.errors.append(f"{resp.status_code} {resp.text[:200]}")
                self.stopping.wait(max(0.0, SCRAPE_EVERY - (time.monotonic() - started)))


def loaded_rate(base: str, scrape: bool) -> tuple[float, list[float]]:
    scraper = Scraper(f"{base}/metrics") if scrape else None
    if scraper:
        scraper.start()
    try:
        rps = rate(f"{base}/api/deployments", {"Authorization": f"Bearer {API_TOKEN}"})
    finally:
        if scraper:
            scraper.stopping.set()
            scraper.join(30)
    if scraper and scraper.errors:
        raise RuntimeError(f"{len(scraper.errors)} bad scrapes, e.g. {scraper.errors[0]}")
    return rps, scraper.seconds if scraper else []


def main() -> dict:
    work = Path(tempfile.mkdtemp(prefix="portside-bench-metrics-"))
    nats = start_nats(work / "nats", password="bench")
    postgres = start_postgres(work / "pg", cleanup_mode="delete")
    processes: list[subprocess.Popen[bytes]] = []
    samples: dict[str, list[float]] = {"no_scraper": [], "scraper_every_100ms": []}
    scrape_seconds: list[float] = []
    try:
        upgrade(postgres.url)
        asyncio.run(seed(postgres.url))
        env = {
            **os.environ,
            "PORTSIDE_HOME": str(work / "home"),
            "PORTSIDE_DATABASE_URL": postgres.url,
            "PORTSIDE_NATS_URL": nats.url,
            "PORTSIDE_METRICS_TOKEN": METRICS_TOKEN,
        }
        port = free_tcp_port()
        processes.append(start_api(env, port))
        base = f"http://127.0.0.1:{port}"
        loaded_rate(base, scrape=True)  # warm-up: pools, first queries, the first scrape's consumer lookups
        for _ in range(ROUNDS):  # modes interleaved, so load from other work on the machine hits each alike
            for mode, values in samples.items():
                rps, seconds = loaded_rate(base, scrape=mode != "no_scraper")
                values.append(rps)
                scrape_seconds += seconds
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        nats.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    results: dict[str, dict] = {
        mode: {"requests_per_s": round(statistics.median(values), 1), "samples": [round(v, 1) for v in values]}
        for mode, values in samples.items()
    }
    base_rate = results["no_scraper"]["requests_per_s"]
    results["scraper_every_100ms"]["relative_to_no_scraper"] = round(
        results["scraper_every_100ms"]["requests_per_s"] / base_rate, 3
    )
    ordered = sorted(scrape_seconds)
    results["scrape_under_load"] = {
        "scrapes": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
    }
    results["setup"] = {
        "deployments": DEPLOYMENTS, "threads": THREADS, "requests_per_sample": THREADS * REQUESTS_PER_THREAD,
        "rounds": ROUNDS, "scrape_every_s": SCRAPE_EVERY, "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"GET /api/deployments with {DEPLOYMENTS} deployments ({THREADS} clients, median of {ROUNDS})")
    print(f"  no scraper           {results['no_scraper']['requests_per_s']:>8.1f} req/s")
    print(f"  /metrics every 100ms {results['scraper_every_100ms']['requests_per_s']:>8.1f} req/s "
          f"({results['scraper_every_100ms']['relative_to_no_scraper']:.2f}x)")
    print(f"  scrape under load    p50 {results['scrape_under_load']['p50_ms']} ms, "
          f"p99 {results['scrape_under_load']['p99_ms']} ms ({len(ordered)} scrapes)")
    return results


if __name__ == "__main__":
    main()

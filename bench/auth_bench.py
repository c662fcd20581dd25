"""Requests per second on GET /api/deployments with 1000 deployments: with authentication (a JWT access token,
and a personal API token) next to the same API without it, in one run. Writes bench/results/auth.json."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from services.api.auth import hash_password, sha256
from shared.db.models import ApiToken, Deployment, Repository, User
from shared.db.session import make_engine, make_sessionmaker
from shared.embedded import start_nats, start_postgres
from shared.migrations import upgrade
from shared.net import free_tcp_port
from tests.support import ROOT

RESULTS = ROOT / "bench" / "results" / "auth.json"
DEPLOYMENTS = 1000
THREADS = 4
REQUESTS_PER_THREAD = 25
ROUNDS = 3
API_TOKEN = "pst_bench-token-0123456789abcdefghijklmnop"


async def seed(database_url: str) -> None:
    engine = make_engine(database_url, application_name="portside-bench")
    async with make_sessionmaker(engine)() as session:
        admin = User(email="bench@portside.test", password_hash=hash_password("bench password"), role="admin")
        session.add(admin)
        await session.flush()
        session.add(ApiToken(user_id=admin.id, name="bench", token_hash=sha256(API_TOKEN), prefix=API_TOKEN[:12]))
        repo = Repository(name="bench", path="/nonexistent/bench", owner_id=admin.id)
        session.add(repo)
        await session.flush()
        session.add_all(
            [
                Deployment(
                    repository_id=repo.id, owner_id=admin.id, repo_name="bench", stack="python", status="stopped"
                )
                for _ in range(DEPLOYMENTS)
            ]
        )
        await session.commit()
    await engine.dispose()


def start_api(env: dict[str, str], port: int, *flags: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "bench.auth_api", str(port), *flags], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the bench API did not start")


def rate(url: str, headers: dict[str, str]) -> float:
    """Requests per second over THREADS clients each sending REQUESTS_PER_THREAD requests in a row."""
    errors: list[str] = []

    def client() -> None:
        with httpx.Client(headers=headers, timeout=60) as http:
            for _ in range(REQUESTS_PER_THREAD):
                resp = http.get(url)
                if resp.status_code != 200 or len(resp.json()["data"]) != DEPLOYMENTS:
                    errors.append(f"{resp.status_code} {resp.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{len(errors)} bad answers, e.g. {errors[0]}")
    return THREADS * REQUESTS_PER_THREAD / elapsed


def main() -> dict:
    work = Path(tempfile.mkdtemp(prefix="portside-bench-auth-"))
    nats = start_nats(work / "nats", password="bench")
    postgres = start_postgres(work / "pg", cleanup_mode="delete")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(postgres.url)
        asyncio.run(seed(postgres.url))
        env = {
            **os.environ,
            "PORTSIDE_HOME": str(work / "home"),
            "PORTSIDE_DATABASE_URL": postgres.url,
            "PORTSIDE_NATS_URL": nats.url,
        }
        with_auth, without_auth = free_tcp_port(), free_tcp_port()
        processes += [start_api(env, with_auth), start_api(env, without_auth, "--no-auth")]
        login = httpx.post(
            f"http://127.0.0.1:{with_auth}/api/auth/login",
            json={"email": "bench@portside.test", "password": "bench password"},
        ).json()
        modes = {
            "no_auth": (without_auth, {}),
            "jwt_access_token": (with_auth, {"Authorization": f"Bearer {login['access_token']}"}),
            "personal_api_token": (with_auth, {"Authorization": f"Bearer {API_TOKEN}"}),
        }
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        for port, headers in modes.values():  # warm-up: connection pools, first queries
            rate(f"http://127.0.0.1:{port}/api/deployments", headers)
        for _ in range(ROUNDS):  # modes interleaved, so load from other work on the machine hits each alike
            for mode, (port, headers) in modes.items():
                samples[mode].append(rate(f"http://127.0.0.1:{port}/api/deployments", headers))
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)
        nats.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    results = {
        mode: {"requests_per_s": round(statistics.median(values), 1), "samples": [round(v, 1) for v in values]}
        for mode, values in samples.items()
    }
    base = results["no_auth"]["requests_per_s"]
    for row in results.values():
        row["relative_to_no_auth"] = round(row["requests_per_s"] / base, 3)
    results["setup"] = {
        "deployments": DEPLOYMENTS,
        "threads": THREADS,
        "requests_per_sample": THREADS * REQUESTS_PER_THREAD,
        "rounds": ROUNDS,
        "cores": os.cpu_count(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"GET /api/deployments with {DEPLOYMENTS} deployments ({THREADS} clients, median of {ROUNDS})")
    for mode in modes:
        print(
            f"  {mode:<20} {results[mode]['requests_per_s']:>8.1f} req/s  ({results[mode]['relative_to_no_auth']:.2f}x)"
        )
    return results


if __name__ == "__main__":
    main()

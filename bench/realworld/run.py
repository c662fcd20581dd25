"""The real-world benchmark: every app in bench/realworld/manifest.yaml deployed through a real Portside (the API,
as a user would), next to a naive hand-written Dockerfile (single stage, `COPY . .` + install) built by hand.

    python -m bench.realworld.run [--side portside|naive|both] [--only ID,...] [--jobs N] [--label NAME]

Repositories come from a local mirror only (`$PORTSIDE_MIRRORS`, default /work/.mirror, laid out as
<owner>+<name>/repo, a bare git directory); an app whose mirror or commit is absent is skipped, so `make bench`
and CI never fetch anything. Per-app outcomes (success, error code, deploy time to the HTTP check, image size,
the last build lines on failure) go to bench/results/realworld-<label>.json; the summary is printed per class.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
import httpx
import yaml

from shared.net import free_tcp_port
from tests.support import ROOT, System, running_system

MANIFEST = Path(__file__).with_name("manifest.yaml")
RESULTS_DIR = ROOT / "bench" / "results"
MIRRORS = Path(os.environ.get("PORTSIDE_MIRRORS", "/work/.mirror"))
CHECK_SECONDS = 90
BUILD_SECONDS = 900
CLASSIC = {"DOCKER_BUILDKIT": "0", "PATH": "/usr/local/bin:/usr/bin:/bin"}


@dataclass
class Outcome:
    ok: bool = False
    stage: str = ""            # where it stopped: generate, deploy, check, or "" when ok
    error_code: str = ""
    detail: str = ""
    seconds: float | None = None
    image_mb: float | None = None
    log_tail: list[str] = field(default_factory=list)
    # "generate_own" when the repository's own Dockerfile was refused with BASE_IMAGE_UNAVAILABLE and the app was
    # then deployed from Portside's own plan, as that error tells the user to do.
    via: str = ""
    first_error: str = ""


def load_manifest() -> list[dict]:
    return yaml.safe_load(MANIFEST.read_text())["apps"]


def mirror_of(app: dict) -> Path:
    return MIRRORS / app["repo"].replace("/", "+") / "repo"


def available(app: dict) -> bool:
    mirror = mirror_of(app)
    if not mirror.is_dir():
        return False
    probe = subprocess.run(["git", "--git-dir", str(mirror), "cat-file", "-e", f"{app['commit']}^{{commit}}"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def export(app: dict, dest: Path) -> Path:
    """The app's repository at its commit, as plain files (what a user's checkout holds)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "--git-dir", str(mirror_of(app)), "archive", "--format=tar", app["commit"]],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def http_check(url: str, check: dict, seconds: float = CHECK_SECONDS) -> tuple[bool, str]:
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            resp = httpx.get(url + check["path"], timeout=5, follow_redirects=True)
            if resp.status_code == check["status"] and check.get("contains", "") in resp.text:
                return True, ""
            last = f"HTTP {resp.status_code}: {resp.text[:200]!r}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(1)
    return False, last


def image_mb(engine: docker.DockerClient, ref: str) -> float | None:
    try:
        return round(engine.images.get(ref).attrs["Size"] / 1e6, 1)
    except docker.errors.DockerException:
        return None


def via_portside(system: System, engine: docker.DockerClient, app: dict, work: Path, generate: dict) -> Outcome:
    source = export(app, work / f"{app['id']}-portside")
    started = time.monotonic()
    out = _portside_once(system, engine, app, source, generate, started)
    if out.error_code == "BASE_IMAGE_UNAVAILABLE" and generate.get("use_repo_dockerfile", True):
        first = out.error_code
        out = _portside_once(system, engine, app, source, {**generate, "use_repo_dockerfile": False}, started)
        out.via, out.first_error = "generate_own", first
    return out


def _portside_once(system: System, engine: docker.DockerClient, app: dict, source: Path, generate: dict,
                   started: float) -> Outcome:
    out = Outcome()
    repo = system.client.post("/api/repositories", json={"path": str(source)})
    if repo.status_code >= 300:
        return Outcome(stage="register", error_code=repo.json().get("error_code", ""), detail=repo.text[:300])
    body = dict(generate)
    if app.get("app_path", ".") not in (".", ""):
        body["app_path"] = app["app_path"]
    for _attempt in range(3):  # generate waits for a free builder; busy ones are the harness's doing, not the app's
        gen = system.client.post(f"/api/deployments/generate/{repo.json()['data']['id']}", json=body, timeout=120)
        if gen.status_code < 300 or gen.json().get("error_code") != "WORKER_TIMEOUT":
            break
    if gen.status_code >= 300:
        err = gen.json()
        return Outcome(stage="generate", error_code=err.get("error_code", ""), detail=str(err.get("detail", ""))[:400])
    deployment_id = gen.json()["data"]["deployment_id"]
    try:
        resp = system.client.post(f"/api/deployments/{deployment_id}/deploy", params={"wait": "true"},
                                  timeout=BUILD_SECONDS + 120)
        data = system.client.get(f"/api/deployments/{deployment_id}").json()["data"]
        if resp.status_code >= 300 or data["status"] not in ("running", "starting"):
            err = resp.json() if resp.status_code >= 300 else {}
            out.stage = "deploy"
            out.error_code = err.get("error_code", data["status"])
            out.detail = str(err.get("detail") or data.get("error_message") or "")[:400]
        else:
            ok, why = http_check(f"http://127.0.0.1:{data['assigned_port']}", app["check"])
            out.ok, out.stage, out.detail = ok, "" if ok else "check", why
            if ok:
                out.seconds = round(time.monotonic() - started, 1)
        containers = system.containers(engine, deployment_id)
        if containers:
            out.image_mb = image_mb(engine, containers[0].attrs["Image"])
        if not out.ok:
            logs = system.client.get(f"/api/deployments/{deployment_id}/logs", params={"lines": 25}).json()
            out.log_tail = [line[-300:] for line in str(logs.get("data", {}).get("logs", "")).splitlines()[-25:]]
    finally:
        system.client.delete(f"/api/deployments/{deployment_id}", params={"purge": "true"}, timeout=120)
    return out


def naive_dockerfile(naive: dict) -> str:
    if "static" in naive:
        return f"FROM nginx:stable\nCOPY {naive['static']}/ /usr/share/nginx/html/\n"
    lines = [f"FROM {naive['base']}", "WORKDIR /app", "COPY . ."]
    for step in ("install", "build"):
        if naive.get(step):
            lines.append(f"RUN {naive[step]}")
    lines += [f"ENV PORT={naive['port']}", f"EXPOSE {naive['port']}", f'CMD ["sh", "-c", {json.dumps(naive["cmd"])}]']
    return "\n".join(lines) + "\n"


def via_naive(engine: docker.DockerClient, app: dict, work: Path) -> Outcome:
    source = export(app, work / f"{app['id']}-naive")
    (source / "Dockerfile.naive").write_text(naive_dockerfile(app["naive"]))
    tag = f"portside-bench/naive-{app['id']}:latest"
    port = free_tcp_port()
    internal = app["naive"].get("port", 80)
    started = time.monotonic()
    build = subprocess.run(["docker", "build", "-q", "-f", "Dockerfile.naive", "-t", tag, "."], cwd=source,
                           capture_output=True, text=True, env=CLASSIC, timeout=BUILD_SECONDS, check=False)
    if build.returncode:
        return Outcome(stage="build", detail=build.stderr[-400:], log_tail=build.stderr.splitlines()[-25:])
    run = subprocess.run(["docker", "run", "-d", "-p", f"127.0.0.1:{port}:{internal}", tag],
                         capture_output=True, text=True, check=False)
    container = run.stdout.strip()
    try:
        ok, why = http_check(f"http://127.0.0.1:{port}", app["check"])
        out = Outcome(ok=ok, stage="" if ok else "check", detail=why, image_mb=image_mb(engine, tag))
        if ok:
            out.seconds = round(time.monotonic() - started, 1)
        else:
            logs = subprocess.run(["docker", "logs", "--tail", "25", container], capture_output=True, text=True,
                                  check=False)
            out.log_tail = (logs.stdout + logs.stderr).splitlines()[-25:]
        return out
    finally:
        if container:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


def summarize(apps: list[dict], results: dict[str, dict], side: str) -> dict:
    rows = [(a, results[a["id"]][side]) for a in apps if side in results.get(a["id"], {})]
    by_class: dict[str, list[bool]] = defaultdict(list)
    for app, out in rows:
        for cls in app["classes"]:
            by_class[cls].append(out["ok"])
    times = [o["seconds"] for _, o in rows if o["ok"] and o["seconds"] is not None]
    sizes = [o["image_mb"] for _, o in rows if o["ok"] and o["image_mb"] is not None]
    return {
        "apps": len(rows),
        "succeeded": sum(o["ok"] for _, o in rows),
        "success_rate": round(sum(o["ok"] for _, o in rows) / len(rows), 3) if rows else None,
        "median_deploy_s": round(statistics.median(times), 1) if times else None,
        "median_image_mb": round(statistics.median(sizes), 1) if sizes else None,
        "per_class": {c: f"{sum(v)}/{len(v)}" for c, v in sorted(by_class.items())},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=["portside", "naive", "both"], default="both")
    parser.add_argument("--only", default="", help="comma-separated app ids")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--label", default="latest", help="results go to bench/results/realworld-<label>.json")
    parser.add_argument("--generate-own", action="store_true",
                        help='generate with {"use_repo_dockerfile": false} (Portside\'s own plan)')
    args = parser.parse_args(argv)

    apps = load_manifest()
    if args.only:
        wanted = set(args.only.split(","))
        apps = [a for a in apps if a["id"] in wanted]
    present = [a for a in apps if available(a)]
    skipped = [a["id"] for a in apps if a not in present]
    if skipped:
        print(f"skipped (no local mirror of the commit): {', '.join(skipped)}")
    if not present:
        print("no mirrored app: nothing to measure")
        return {}

    engine = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="portside-realworld-"))
    out_file = RESULTS_DIR / f"realworld-{args.label}.json"
    results: dict[str, dict] = {}
    if out_file.exists():  # a partial run (--only) updates the apps it measured and keeps the rest
        results = json.loads(out_file.read_text()).get("apps", {})
    lock = threading.Lock()
    # The code the system runs is the checkout's when it starts; HEAD may move while a long run goes on.
    commit = _head()
    generate = {"use_repo_dockerfile": False} if args.generate_own else {}

    def one(system: System | None, app: dict) -> None:
        row: dict = {}
        for side in ("portside", "naive"):
            if args.side not in (side, "both"):
                continue
            try:
                outcome = via_portside(system, engine, app, work, generate) if side == "portside" \
                    else via_naive(engine, app, work)
            except Exception as exc:  # noqa: BLE001 - one app's surprise is that app's outcome, not the run's end
                outcome = Outcome(stage="harness", detail=f"{type(exc).__name__}: {exc}"[:400])
            row[side] = {**asdict(outcome), "commit": commit}
            print(f"[{side:8}] {app['id']:<34} {'OK  ' if outcome.ok else 'FAIL'} "
                  f"{outcome.seconds or '':>6} s {outcome.image_mb or '':>7} MB  "
                  f"{outcome.error_code} {outcome.detail[:120]!r}", flush=True)
        with lock:
            results[app["id"]] = {**results.get(app["id"], {}), **row}
            save()

    def save() -> None:
        all_apps = load_manifest()
        summary = {side: summarize(all_apps, results, side) for side in ("portside", "naive")}
        report = {"label": args.label, "commit": commit, "summary": summary, "apps": results}
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(report, indent=2) + "\n")
        return report

    try:
        if args.side == "naive":
            with ThreadPoolExecutor(args.jobs) as pool:
                list(pool.map(lambda a: one(None, a), present))
        else:
            env = {"PORTSIDE_BUILD_TIMEOUT_SECONDS": str(BUILD_SECONDS), "PORTSIDE_READY_TIMEOUT_SECONDS": "120"}
            # A builder per job: generate is answered by a builder too, and must not wait behind builds.
            replicas = ["--replicas", f"builder={max(1, args.jobs)}"]
            with running_system(work / "home", engine, extra_env=env, args=replicas) as system:
                system.client.timeout = httpx.Timeout(BUILD_SECONDS + 120)
                with ThreadPoolExecutor(args.jobs) as pool:
                    list(pool.map(lambda a: one(system, a), present))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report = save()
    print(json.dumps(report["summary"], indent=2))
    return report


def _head() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()


if __name__ == "__main__":
    main()

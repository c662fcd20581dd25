"""The web page's budget: the JavaScript the first page loads (raw and gzip) and the time until the first page is
interactive in headless Chromium (Debian's), against a whole Portside. Writes bench/results/web.json.

"Interactive" here: the sign-in form is rendered with its email field enabled and focused (what a first-time user
sees first), timed from navigation start by the page's own clock (performance.now()), cold cache each round.

Usage: python -m bench.web_bench [--rounds N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIST = ROOT / "services" / "web" / "dist"
RESULTS = ROOT / "bench" / "results" / "web.json"
CHROMIUM = "/usr/bin/chromium"


def sizes(files: list[Path]) -> dict:
    raw = sum(f.stat().st_size for f in files)
    gz = sum(len(gzip.compress(f.read_bytes(), compresslevel=6)) for f in files)
    return {"files": [f.name for f in files], "raw_bytes": raw, "gzip_bytes": gz}


def first_page_files() -> dict[str, list[Path]]:
    """What index.html makes the browser fetch before anything is lazy-loaded."""
    html = (DIST / "index.html").read_text()
    js = re.findall(r'<script[^>]+src="/([^"]+\.js)"', html)
    js += re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="/([^"]+)"', html)
    css = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="/([^"]+)"', html)
    return {"js": [DIST / p for p in js], "css": [DIST / p for p in css]}


def time_to_interactive(url: str, rounds: int) -> dict:
    from playwright.sync_api import sync_playwright

    cold, warm = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(rounds):
            context = browser.new_context(viewport={"width": 1366, "height": 800})
            page = context.new_page()
            for bucket in (cold, warm):  # first load with an empty cache, then a reload with it warm
                if bucket is cold:
                    page.goto(url + "/")
                else:
                    page.reload()
                page.wait_for_selector("input[type=email]:enabled:focus", timeout=30_000)
                bucket.append(page.evaluate("performance.now()"))
            context.close()
        browser.close()
    return {
        "cold_median_ms": round(statistics.median(cold), 1), "cold_max_ms": round(max(cold), 1),
        "warm_median_ms": round(statistics.median(warm), 1), "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if not (DIST / "index.html").is_file():
        sys.exit("services/web/dist is not built: run `make install`")
    first = first_page_files()
    monaco = sorted(DIST.glob("assets/MonacoEditor-*.js")) + sorted(DIST.glob("assets/editor.worker-*.js"))
    result: dict = {
        "first_page_js": sizes(first["js"]),
        "first_page_css": sizes(first["css"]),
        "editor_js_lazy": sizes(monaco),  # Monaco: fetched only when the Files tab opens
        "note": "The build writes a gzip copy of each file and the API sends it to browsers that accept gzip: "
                "gzip_bytes (level 6 here) is close to what travels.",
        "published_comparisons": "None quoted: no first-page JS size or time-to-interactive published by Coolify "
                                 "or Dokploy turned up in the reference search available here (no open internet).",
    }
    if Path(CHROMIUM).exists():
        import docker

        from tests.support import running_system

        with tempfile.TemporaryDirectory(prefix="portside-web-bench-") as home, \
                running_system(Path(home), docker.from_env(), sign_up=False) as system:
            result["time_to_interactive"] = time_to_interactive(system.url, args.rounds)
    else:
        result["time_to_interactive"] = {"skipped": f"{CHROMIUM} missing (scripts/ensure-chromium.sh installs it)"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    fp = result["first_page_js"]
    print(f"first page JS: {fp['raw_bytes'] / 1024:.1f} KiB raw, {fp['gzip_bytes'] / 1024:.1f} KiB gzip "
          f"({len(fp['files'])} file(s)); editor (lazy) {result['editor_js_lazy']['gzip_bytes'] / 1024:.1f} KiB gzip")
    print(f"time to interactive: {result['time_to_interactive']}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Before/after table of two real-world runs: `python -m bench.realworld.report before after`.

Compares only the apps both runs measured (a partial run with --only leaves the others out), per class, with the
median deploy time and image size of the apps each run served, and lists what still fails with its reason."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

from bench.realworld.run import RESULTS_DIR, load_manifest


def _load(label: str) -> dict[str, dict]:
    return json.loads((RESULTS_DIR / f"realworld-{label}.json").read_text())["apps"]


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}" if values else "-"


def main(argv: list[str]) -> None:
    before_label, after_label = argv[:2] if len(argv) >= 2 else ("before", "after")
    before, after = _load(before_label), _load(after_label)
    side = argv[2] if len(argv) > 2 else "portside"
    apps = [a for a in load_manifest() if side in before.get(a["id"], {}) and side in after.get(a["id"], {})]
    per_class: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for app in apps:
        for cls in ["all", *app["classes"]]:
            per_class[cls].append((before[app["id"]][side]["ok"], after[app["id"]][side]["ok"]))
    print(f"{len(apps)} apps measured in both runs ({before_label} -> {after_label}, {side})")
    print(f"{'class':<12} {before_label:>8} {after_label:>8}")
    for cls, pairs in sorted(per_class.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        print(f"{cls:<12} {sum(b for b, _ in pairs):>4}/{len(pairs):<3} {sum(a for _, a in pairs):>4}/{len(pairs):<3}")
    for label, run in ((before_label, before), (after_label, after)):
        ok = [run[a["id"]][side] for a in apps if run[a["id"]][side]["ok"]]
        print(f"{label}: median deploy {_median([o['seconds'] for o in ok if o.get('seconds')])} s, "
              f"median image {_median([o['image_mb'] for o in ok if o.get('image_mb')])} MB")
    print("\nstill failing:")
    for app in apps:
        out = after[app["id"]][side]
        if not out["ok"]:
            print(f"  {app['id']:<34} {out.get('error_code') or out.get('stage')}: {out.get('detail', '')[:150]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

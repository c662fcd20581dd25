"""Deno: deno.json(c), deno.lock, Fresh, Oak, Hono on Deno, `Deno.serve`."""

from __future__ import annotations

import re
from typing import Any

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_LOCKFILE,
    W_MANIFEST,
    Unplannable,
    note,
    valid_port,
)
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, serving_port
from shared.source import SourceTree

CONFIGS = ("deno.json", "deno.jsonc")
_ENTRIES = ("main.ts", "server.ts", "mod.ts", "src/main.ts", "app.ts", "index.ts", "main.js", "dev.ts")
_PORT = (re.compile(r"port\s*:\s*(?:[^,}\n]*?(?:\|\||\?\?)\s*)?(\d{2,5})"),
         re.compile(r"Deno\.env\.get\(['\"]PORT['\"]\)[^|?;\n]{0,12}(?:\|\||\?\?)\s*['\"]?(\d{2,5})"),
         re.compile(r"listen\(\s*\{\s*port\s*:\s*(\d{2,5})"))


def _strip_jsonc(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"(?m)^\s*//.*$|(?<=[,{\[\s])//[^\n\"]*$", "", text)
    return re.sub(r",(\s*[}\]])", r"\1", text)


class DenoProvider:
    name = "deno"

    def detect(self, src: SourceTree) -> bool:
        if any(src.has_file(c) for c in CONFIGS) or src.has_file("deno.lock"):
            return True
        return not src.has_file("package.json") and any(
            "Deno." in (src.read_text(f) or "") for f in _ENTRIES[:3] if src.has_file(f))

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="deno", package_manager="deno")
        cfg_name = next((c for c in CONFIGS if src.has_file(c)), None)
        cfg: dict[str, Any] = {}
        if cfg_name:
            import json

            try:
                loaded = json.loads(_strip_jsonc(src.read_text(cfg_name) or "{}"))
                cfg = loaded if isinstance(loaded, dict) else {}
            except ValueError as exc:
                src.warnings.append(f"{cfg_name}: invalid JSON ({exc}); ignored")
                src.invalid.add(cfg_name)
            note(det, cfg_name, f"{cfg_name} configures a Deno project", W_MANIFEST)
        else:
            note(det, "main.ts", "TypeScript that calls Deno APIs", W_MANIFEST // 2)
        if src.has_file("deno.lock"):
            note(det, "deno.lock", "deno.lock pins the dependencies", W_LOCKFILE)
        imports = str(cfg.get("imports", "")) + (src.read_text("import_map.json") or "")
        entry = next((e for e in _ENTRIES if src.has_file(e)), None)
        code = src.read_text(entry) if entry else ""
        if "$fresh" in imports or "@fresh/core" in imports or "fresh" in str(cfg.get("tasks", "")):
            det.framework = "fresh"
        elif "oak" in imports or "deno.land/x/oak" in (code or ""):
            det.framework = "oak"
        elif "hono" in imports or "hono" in (code or ""):
            det.framework = "hono"
        if det.framework:
            note(det, cfg_name or entry or ".", f"uses {det.framework}", W_FRAMEWORK)
        tasks = tasks if isinstance(tasks := cfg.get("tasks"), dict) else {}
        if "build" in tasks:
            det.build_command = "deno task build"
        if "start" in tasks:
            det.start_command = "deno task start"
            note(det, cfg_name or "deno.json", f"tasks.start: `{tasks['start']}`", W_ENTRYPOINT)
        elif entry:
            det.start_command = f"deno run --allow-net --allow-env --allow-read {entry}"
            note(det, entry, f"{entry} is the entry module", W_ENTRYPOINT)
        else:
            det.start_command_help = "No entry found: add a `start` task to deno.json or a main.ts."
        port = None
        for rx in _PORT:
            m = rx.search(code or "")
            if m:
                port = valid_port(m.group(1))
                break
        det.internal_port = port or 8000
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """Deno's image caches the entry file's imports, then runs the start task's command."""
        if not det.start_command:
            raise Unplannable(det.start_command_help or 'No start command found; add a "start" task to deno.json.')
        start = det.start_command
        manifests = [f for f in ("deno.json", "deno.jsonc", "deno.lock", "import_map.json") if src.has_file(f)]
        entry = next((w for w in reversed(start.split()) if w.endswith((".ts", ".js", ".tsx", ".mjs"))), "")
        if not entry:
            entry = next((f for f in ("main.ts", "mod.ts", "server.ts", "main.js") if src.has_file(f)), "main.ts")
        return BuildPlan("deno", det.framework, "deno", det.runtime_version or DEFAULT_VERSIONS["deno"],
                         serving_port("deno", det.internal_port, False), start, det.build_command, manifests,
                         template="deno/Dockerfile.j2", artifact=entry)

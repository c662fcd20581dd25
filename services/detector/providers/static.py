"""Static sites: plain HTML with no build step, and Hugo sites (a binary builds them, no runtime serves them)."""

from __future__ import annotations

from services.detector.providers.base import W_ENTRYPOINT, W_FRAMEWORK, W_MANIFEST, note
from shared.detection import Detection
from shared.plan import STATIC_PORT, BuildPlan
from shared.source import SourceTree

HUGO_VERSION = "0.139.4"

_HUGO_CONFIGS = ("hugo.toml", "hugo.yaml", "hugo.json", "config.toml", "config.yaml")
_HTML_ROOTS = ("index.html", "public/index.html", "www/index.html", "site/index.html", "docs/index.html",
               "src/index.html")


class StaticProvider:
    name = "static"
    # Every Vite/CRA app has an index.html: plain HTML only counts when no runtime claimed the directory.
    fallback = True

    def _hugo(self, src: SourceTree) -> str | None:
        for cfg in _HUGO_CONFIGS:
            if src.has_file(cfg) and (cfg.startswith("hugo.") or src.has_dir("content") or src.has_dir("themes")
                                      or src.has_dir("layouts")):
                return cfg
        return None

    def detect(self, src: SourceTree) -> bool:
        return self._hugo(src) is not None or any(src.has_file(f) for f in _HTML_ROOTS)

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="static", internal_port=80)
        hugo = self._hugo(src)
        if hugo:
            det.framework = "hugo"
            det.build_command = "hugo --minify"
            det.output_dir = "public"
            note(det, hugo, f"{hugo} with content/themes: a Hugo site", W_MANIFEST + W_FRAMEWORK)
            return det
        root = next(f for f in _HTML_ROOTS if src.has_file(f))
        det.output_dir = root.rsplit("/", 1)[0] if "/" in root else "."
        note(det, root, f"{root}: plain HTML with no build step", W_MANIFEST + W_ENTRYPOINT)
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """Files served by an unprivileged nginx; a Hugo site is built first by the Hugo binary."""
        port = STATIC_PORT if det.output_dir is not None and not det.start_command else det.internal_port or 8080
        out = det.output_dir or "."
        if det.framework == "hugo":
            return BuildPlan("static", "hugo", "hugo", HUGO_VERSION, port, "", det.build_command or "hugo --minify",
                             [], template="static/hugo.Dockerfile.j2", output_dir=out)
        return BuildPlan("static", det.framework, "none", "stable", port, "", None, [], template="static/Dockerfile.j2",
                         output_dir=out)

"""Languages Portside does not build yet: named from their manifest, or from the dominant source extension."""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

from services.detector.providers.base import W_MANIFEST, W_WEAK, note
from shared.detection import Detection
from shared.source import SourceTree

# Manifest -> (stack, package manager).
MANIFESTS = (
    ("build.sbt", "scala", "sbt"), ("Package.swift", "swift", "swiftpm"), ("shard.yml", "crystal", "shards"),
    ("build.zig", "zig", None), ("pubspec.yaml", "dart", "pub"), ("stack.yaml", "haskell", "stack"),
    ("cabal.project", "haskell", "cabal"), ("project.clj", "clojure", "leiningen"), ("deps.edn", "clojure", "clojure"),
    ("rebar.config", "erlang", "rebar3"), ("gleam.toml", "gleam", "gleam"), ("dune-project", "ocaml", "dune"),
    ("Project.toml", "julia", "pkg"), ("DESCRIPTION", "r", None), ("nimble", "nim", "nimble"),
    ("cpanfile", "perl", "cpanm"), ("Makefile.PL", "perl", None), ("v.mod", "v", None),
    ("CMakeLists.txt", "cpp", "cmake"), ("meson.build", "c", "meson"),
)
EXTENSIONS = {
    ".scala": "scala", ".swift": "swift", ".cr": "crystal", ".zig": "zig", ".dart": "dart", ".hs": "haskell",
    ".clj": "clojure", ".erl": "erlang", ".gleam": "gleam", ".ml": "ocaml", ".jl": "julia", ".R": "r",
    ".nim": "nim", ".pl": "perl", ".pm": "perl", ".lua": "lua", ".c": "c", ".cpp": "cpp", ".cc": "cpp",
    ".kt": "kotlin", ".java": "java", ".go": "go", ".rs": "rust", ".rb": "ruby", ".php": "php", ".py": "python",
    ".ex": "elixir", ".exs": "elixir", ".cs": "dotnet", ".fs": "dotnet", ".js": "node", ".ts": "node",
    ".mjs": "node", ".v": "v",
}


class OtherLanguageProvider:
    name = "other"
    fallback = True

    def detect(self, src: SourceTree) -> bool:
        return any(src.has_file(m) for m, _, _ in MANIFESTS) or self._dominant(src) is not None

    def _dominant(self, src: SourceTree) -> tuple[str, int] | None:
        counts: Counter[str] = Counter()
        for f in src.glob("*", max_depth=2)[:20000]:
            lang = EXTENSIONS.get(PurePosixPath(f).suffix)
            if lang:
                counts[lang] += 1
        if not counts:
            return None
        lang, n = counts.most_common(1)[0]
        return (lang, n) if n >= 2 or sum(counts.values()) == 1 else None

    def analyze(self, src: SourceTree) -> Detection:
        for manifest, stack, pm in MANIFESTS:
            if src.has_file(manifest):
                det = Detection(stack=stack, package_manager=pm)
                note(det, manifest, f"{manifest} declares a {stack} project", W_MANIFEST)
                det.start_command_help = (f"Portside has no {stack} builder yet: add a Dockerfile that builds and "
                                          "runs the app.")
                return det
        lang, n = self._dominant(src) or ("unknown", 0)
        det = Detection(stack=lang)
        note(det, ".", f"{n} {lang} source file(s) and no manifest", W_WEAK * 3)
        det.start_command_help = "No manifest found: add one (or a Dockerfile) so Portside knows how to build the app."
        return det

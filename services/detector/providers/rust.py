"""Rust: Cargo.toml (cargo), the binary name, web frameworks (axum, actix-web, rocket, ...) and ports."""

from __future__ import annotations

import re

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_MANIFEST,
    W_VERSION,
    as_dict,
    as_list,
    note,
    valid_port,
)
from services.detector.providers.common import add_service
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, major_minor, serving_port
from shared.source import SourceTree

FRAMEWORKS = (("leptos", "leptos", 3000), ("loco-rs", "loco", 5150), ("axum", "axum", 3000),
              ("actix-web", "actix-web", 8080), ("rocket", "rocket", 8000), ("warp", "warp", 3030),
              ("poem", "poem", 3000), ("salvo", "salvo", 5800), ("tide", "tide", 8080),
              ("hyper", "hyper", 3000))
_FEATURE_SERVICES = (("postgres", "postgres"), ("mysql", "mysql"), ("sqlite", "sqlite"))
DEP_SERVICES = {"tokio-postgres": "postgres", "postgres": "postgres", "deadpool-postgres": "postgres",
                "mysql": "mysql", "mysql_async": "mysql", "rusqlite": "sqlite", "redis": "redis",
                "deadpool-redis": "redis", "mongodb": "mongodb", "lapin": "rabbitmq"}
_PORT = (
    re.compile(r"\"(?:0\.0\.0\.0|127\.0\.0\.1|localhost|\[::\]|::)?:(\d{2,5})\""),
    re.compile(r"\(\s*\"(?:0\.0\.0\.0|127\.0\.0\.1|localhost)\"\s*,\s*(\d{2,5})\s*\)"),
    re.compile(r"\(\[\s*(?:0\s*,\s*){3}0\s*\]\s*,\s*(\d{2,5})\s*\)|\(\[\s*127\s*,\s*0\s*,\s*0\s*,\s*1\s*\]\s*,\s*"
               r"(\d{2,5})\s*\)"),
    re.compile(r"unwrap_or\(\s*\"?(\d{2,5})\"?"),
)


def port_in_rust(text: str) -> int | None:
    for rx in _PORT:
        m = rx.search(text)
        if m:
            return valid_port(next(g for g in m.groups() if g))
    return None


class RustProvider:
    name = "rust"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("Cargo.toml")

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="rust", package_manager="cargo")
        cargo = src.read_toml("Cargo.toml") or {}
        note(det, "Cargo.toml", "Cargo.toml declares a Rust crate", W_MANIFEST if cargo else W_MANIFEST // 2)
        if src.has_file("Cargo.lock"):
            note(det, "Cargo.lock", "Cargo.lock pins the dependencies", 10)
        self._version(src, det, cargo)
        deps: dict[str, object] = {}
        for key in ("dependencies",):
            deps.update(as_dict(cargo.get(key)))
        deps.update(as_dict(as_dict(cargo.get("workspace")).get("dependencies")))
        default_port = 8080
        for dep, fw, fw_port in FRAMEWORKS:
            if dep in deps:
                det.framework, default_port = fw, fw_port
                note(det, "Cargo.toml", f"depends on {dep}", W_FRAMEWORK)
                break
        for dep, spec in deps.items():
            if dep in DEP_SERVICES:
                add_service(det, DEP_SERVICES[dep], "Cargo.toml", f"depends on {dep}")
            features = spec.get("features", []) if isinstance(spec, dict) else []
            if dep in ("sqlx", "diesel", "sea-orm", "sqlx-core"):
                for feat in features:
                    for word, service in _FEATURE_SERVICES:
                        if word in str(feat):
                            add_service(det, service, "Cargo.toml", f"{dep} uses the {feat} feature")
        name = self._binary(cargo)
        if name is None:
            det.start_command_help = "No binary target found: add a [package] name or a [[bin]] to Cargo.toml."
            return det
        det.build_command = "cargo build --release"
        det.start_command = f"./target/release/{name}"
        note(det, "Cargo.toml", f"the binary is {name}", W_ENTRYPOINT)
        port = None
        for f in ["src/main.rs", *[g for g in src.glob("src/**/*.rs", max_depth=3) if g != "src/main.rs"]][:40]:
            port = port_in_rust(src.read_text(f) or "")
            if port:
                note(det, f, f"{f} binds port {port}")
                break
        rocket = src.read_text("Rocket.toml") or ""
        m = re.search(r"^\s*port\s*=\s*(\d{2,5})", rocket, re.MULTILINE)
        if m:
            port = int(m.group(1))
            note(det, "Rocket.toml", f"Rocket.toml sets port {port}")
        det.internal_port = port or default_port
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """A release binary built by cargo, run alone in a slim image."""
        version = major_minor(det.runtime_version, DEFAULT_VERSIONS["rust"])
        binary = (det.start_command or "").rsplit("/", 1)[-1].split()[0] if det.start_command else ""
        if not binary:
            match = re.search(r'^\s*name\s*=\s*"([^"]+)"', src.read_text("Cargo.toml") or "", re.MULTILINE)
            binary = match[1] if match else "app"
        locked = src.has_file("Cargo.lock")
        manifests = ["Cargo.toml", *(["Cargo.lock"] if locked else [])]
        notes = [] if locked else ["No Cargo.lock: dependencies resolve at build time; commit Cargo.lock."]
        return BuildPlan("rust", det.framework, "cargo", version, serving_port("rust", det.internal_port, False),
                         f"/usr/local/bin/{binary}", det.build_command, manifests, template="rust/Dockerfile.j2",
                         artifact=binary, locked=locked, notes=notes)

    def _binary(self, cargo: dict) -> str | None:
        bins = as_list(cargo.get("bin"))
        if isinstance(bins, list) and bins and isinstance(bins[0], dict) and bins[0].get("name"):
            return str(bins[0]["name"])
        package = cargo.get("package")
        return str(package["name"]) if isinstance(package, dict) and package.get("name") else None

    def _version(self, src: SourceTree, det: Detection, cargo: dict) -> None:
        if src.has_file("rust-toolchain.toml"):
            tc = src.read_toml("rust-toolchain.toml") or {}
            channel = str(as_dict(tc.get("toolchain")).get("channel", ""))
            if channel:
                det.runtime_version = channel
                note(det, "rust-toolchain.toml", f"rust-toolchain.toml pins {channel}", W_VERSION)
                return
        text = src.read_text("rust-toolchain")
        if text and text.strip():
            det.runtime_version = text.strip().splitlines()[0]
            note(det, "rust-toolchain", f"rust-toolchain pins {det.runtime_version}", W_VERSION)
            return
        rv = as_dict(cargo.get("package")).get("rust-version")
        if isinstance(rv, str):
            det.runtime_version = rv
            note(det, "Cargo.toml", f"rust-version is {rv}", W_VERSION)

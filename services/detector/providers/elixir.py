"""Elixir: mix.exs (mix), Phoenix and plain Plug/OTP apps."""

from __future__ import annotations

import re

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_LOCKFILE,
    W_MANIFEST,
    W_VERSION,
    Unplannable,
    note,
)
from services.detector.providers.common import add_service
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, major_minor, serving_port
from shared.source import SourceTree

DEP_SERVICES = {"postgrex": "postgres", "myxql": "mysql", "ecto_sqlite3": "sqlite", "redix": "redis",
                "mongodb_driver": "mongodb", "amqp": "rabbitmq", "broadway_rabbitmq": "rabbitmq"}


class ElixirProvider:
    name = "elixir"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("mix.exs")

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="elixir", package_manager="mix")
        mix = src.read_text("mix.exs") or ""
        note(det, "mix.exs", "mix.exs declares an Elixir project", W_MANIFEST)
        if src.has_file("mix.lock"):
            note(det, "mix.lock", "mix.lock pins the dependencies", W_LOCKFILE)
        deps = set(re.findall(r"\{\s*:(\w+)\s*,", mix))
        tv = re.search(r"^\s*elixir\s+(\d+\.\d+)", src.read_text(".tool-versions") or "", re.MULTILINE)
        mv = re.search(r"elixir:\s*\"[~>=\s]*(\d+\.\d+)", mix)
        if tv or mv:
            det.runtime_version = (tv or mv).group(1)  # type: ignore[union-attr]
            note(det, ".tool-versions" if tv else "mix.exs", f"Elixir {det.runtime_version}", W_VERSION)
        for dep, service in DEP_SERVICES.items():
            if dep in deps:
                add_service(det, service, "mix.exs", f"depends on :{dep}")
        det.internal_port = 4000
        if "phoenix" in deps:
            det.framework = "phoenix"
            note(det, "mix.exs", "depends on :phoenix", W_FRAMEWORK)
            det.start_command = "mix phx.server"
            note(det, "mix.exs", "Phoenix serves with `mix phx.server` (MIX_ENV=prod)", W_ENTRYPOINT)
            if "assets.deploy" in mix:
                det.build_command = "mix assets.deploy"
            runtime = src.read_text("config/runtime.exs") or ""
            m = re.search(r"port:\s*String\.to_integer\(System\.get_env\(\"PORT\"\)\s*\|\|\s*\"(\d{2,5})\"\)", runtime)
            if m:
                det.internal_port = int(m.group(1))
        elif "plug_cowboy" in deps or "bandit" in deps:
            det.framework = "plug"
            det.start_command = "mix run --no-halt"
            note(det, "mix.exs", "a Plug server app: `mix run --no-halt`", W_ENTRYPOINT)
            for f in src.glob("lib/**/*.ex", max_depth=4)[:30]:
                m = re.search(r"port:\s*(?:String\.to_integer\([^)]*\|\|\s*\")?(\d{2,5})", src.read_text(f) or "")
                if m:
                    det.internal_port = int(m.group(1))
                    note(det, f, f"{f} binds port {m.group(1)}")
                    break
        else:
            det.start_command = "mix run --no-halt"
            note(det, "mix.exs", "an OTP app: `mix run --no-halt`")
            det.internal_port = None
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """A mix release named after the app (`app:` in mix.exs), started by its own script."""
        version = major_minor(det.runtime_version, DEFAULT_VERSIONS["elixir"])
        match = re.search(r"app:\s*:(\w+)", src.read_text("mix.exs") or "")
        if not match:
            raise Unplannable("mix.exs names no `app:`; add one to its project (`app: :my_app`): Portside builds a "
                              "release named after it.")
        manifests = ["mix.exs", *(["mix.lock"] if src.has_file("mix.lock") else [])]
        return BuildPlan("elixir", det.framework, "mix", version, serving_port("elixir", det.internal_port, False),
                         f"/app/bin/{match[1]} start", det.build_command, manifests, template="elixir/Dockerfile.j2",
                         artifact=match[1])

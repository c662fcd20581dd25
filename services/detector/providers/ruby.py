"""Ruby: Gemfile (bundler), Rails, Sinatra, Hanami, Roda, plain Rack, Jekyll sites."""

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

FRAMEWORKS = (("rails", "rails", 3000), ("railties", "rails", 3000), ("hanami", "hanami", 2300),
              ("sinatra", "sinatra", 4567), ("roda", "roda", 9292), ("grape", "grape", 9292),
              ("jekyll", "jekyll", 80), ("middleman", "middleman", 80))
GEM_SERVICES = {"pg": "postgres", "mysql2": "mysql", "trilogy": "mysql", "sqlite3": "sqlite", "redis": "redis",
                "sidekiq": "redis", "resque": "redis", "mongoid": "mongodb", "mongo": "mongodb", "bunny": "rabbitmq",
                "sneakers": "rabbitmq"}
_ADAPTERS = (("postgis", "postgres"), ("postgresql", "postgres"), ("mysql2", "mysql"), ("trilogy", "mysql"),
             ("sqlite3", "sqlite"))


def gems(gemfile: str) -> list[str]:
    return re.findall(r"^\s*gem\s+['\"]([\w.-]+)['\"]", gemfile, re.MULTILINE)


class RubyProvider:
    name = "ruby"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("Gemfile") or src.has_file("config.ru") or src.has_file("gems.rb")

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="ruby", package_manager="bundler")
        gemfile_name = "Gemfile" if src.has_file("Gemfile") else "gems.rb"
        gemfile = src.read_text(gemfile_name) or ""
        note(det, gemfile_name if gemfile else "config.ru", "a Ruby app (Gemfile / config.ru)",
             W_MANIFEST if gemfile else W_MANIFEST // 2)
        if src.has_file("Gemfile.lock"):
            note(det, "Gemfile.lock", "Gemfile.lock pins the gems", W_LOCKFILE)
        self._version(src, det, gemfile)
        names = gems(gemfile)
        lock = src.read_text("Gemfile.lock") or ""
        port = 9292
        for gem, fw, default in FRAMEWORKS:
            if gem in names:
                det.framework, port = fw, default
                note(det, gemfile_name, f"depends on {gem}", W_FRAMEWORK)
                break
        for gem, service in GEM_SERVICES.items():
            if gem in names:
                add_service(det, service, gemfile_name, f"depends on {gem}")
        db = src.read_text("config/database.yml") or ""
        m = re.search(r"^\s*(?:production|default)\s*:.*?adapter:\s*(\w+)", db, re.MULTILINE | re.DOTALL)
        for adapter, service in _ADAPTERS:
            if m and m.group(1) == adapter:
                add_service(det, service, "config/database.yml", f"database.yml uses the {adapter} adapter")
        if det.framework in ("jekyll", "middleman"):
            det.build_command = (
                "bundle exec jekyll build" if det.framework == "jekyll" else "bundle exec middleman build"
            )
            det.output_dir = "_site" if det.framework == "jekyll" else "build"
            det.internal_port = 80
            return det
        if det.framework == "rails":
            puma = src.read_text("config/puma.rb") or ""
            pm = re.search(r"port\s+ENV\.fetch\(\s*['\"]PORT['\"]\s*\)\s*\{\s*(\d{2,5})", puma) or \
                re.search(r"port\s+ENV\.fetch\(\s*['\"]PORT['\"]\s*,\s*(\d{2,5})", puma)
            if pm:
                port = int(pm.group(1))
            det.start_command = (f"bundle exec rails server -b 0.0.0.0 -p {port}")
            note(det, "config/application.rb" if src.has_file("config/application.rb") else gemfile_name,
                 "a Rails app: started with `rails server` (puma)", W_ENTRYPOINT)
            if src.has_dir("app/assets") or "propshaft" in names or "sprockets-rails" in names or \
                    "tailwindcss-rails" in names or "jsbundling-rails" in names:
                det.build_command = "bundle exec rails assets:precompile"
        elif src.has_file("config.ru"):
            det.start_command = f"bundle exec rackup --host 0.0.0.0 --port {port}"
            note(det, "config.ru", "config.ru is the Rack entry point", W_ENTRYPOINT)
        else:
            main = next((f for f in ("app.rb", "main.rb", "server.rb", "application.rb") if src.has_file(f)), None)
            if main:
                det.start_command = f"bundle exec ruby {main}"
                note(det, main, f"{main} is the main file", W_ENTRYPOINT)
                m2 = re.search(r"set\s+:port\s*,\s*(?:ENV\.fetch\([^)]*\)\s*\{\s*)?(\d{2,5})",
                               src.read_text(main) or "")
                if m2:
                    port = int(m2.group(1))
        if "rails" not in names and "railties" in lock and det.framework is None:
            det.framework = "rails"
        det.internal_port = port
        if det.start_command is None:
            det.start_command_help = "No start command found: add a config.ru or a Procfile with `web: <command>`."
        return det

    def _version(self, src: SourceTree, det: Detection, gemfile: str) -> None:
        text = src.read_text(".ruby-version")
        if text and text.strip():
            v = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
            if v:
                det.runtime_version = v.group(1)
                note(det, ".ruby-version", f".ruby-version pins Ruby {v.group(1)}", W_VERSION)
                return
        m = re.search(r"^\s*ruby\s+['\"][~>=\s]*(\d+\.\d+(?:\.\d+)?)['\"]", gemfile, re.MULTILINE)
        if m:
            det.runtime_version = m.group(1)
            note(det, "Gemfile", f"the Gemfile asks for Ruby {m.group(1)}", W_VERSION)
            return
        m = re.search(r"^\s*ruby\s+(\d+\.\d+(?:\.\d+)?)", src.read_text(".tool-versions") or "", re.MULTILINE)
        if m:
            det.runtime_version = m.group(1)
            note(det, ".tool-versions", f".tool-versions pins Ruby {m.group(1)}", W_VERSION)

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """Bundler installs the lockfile in a build stage (with the headers its native gems need); the runtime image
        gets only their shared libraries. A Jekyll or Middleman site is served by nginx."""
        version = major_minor(det.runtime_version, DEFAULT_VERSIONS["ruby"])
        locked = src.has_file("Gemfile.lock")
        manifests = ["Gemfile", *(["Gemfile.lock"] if locked else [])]
        gemfile = src.read_text("Gemfile") or ""
        build_pkgs, run_pkgs = ["build-essential", "libyaml-dev"], []
        if re.search(r"gem ['\"]pg['\"]", gemfile):
            build_pkgs.append("libpq-dev")
            run_pkgs.append("libpq5")
        if re.search(r"gem ['\"](mysql2|trilogy)['\"]", gemfile):
            build_pkgs.append("default-libmysqlclient-dev")
            run_pkgs.append("libmariadb3")
        if re.search(r"gem ['\"]sqlite3['\"]", gemfile):
            run_pkgs.append("libsqlite3-0")
        static = det.output_dir is not None and not det.start_command
        if not static and not det.start_command:
            raise Unplannable(det.start_command_help or "No start command found; add a Procfile with a `web:` line.")
        return BuildPlan(
            "ruby", det.framework, "bundler", version, serving_port("ruby", det.internal_port, static),
            "" if static else det.start_command or "", det.build_command, manifests,
            template="ruby/static.Dockerfile.j2" if static else "ruby/Dockerfile.j2", locked=locked,
            output_dir=det.output_dir if static else None, build_packages=build_pkgs, runtime_packages=run_pkgs,
        )

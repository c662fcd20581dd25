"""Node (npm, yarn, pnpm, bun): package.json, lockfiles, frameworks, ports and start commands."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_MANIFEST,
    note,
    port_from_command,
    valid_port,
)
from services.detector.providers.common import add_service
from services.detector.providers.node import plan as node_plan
from services.detector.providers.node.frameworks import DEV_START_MARKERS, Framework, find_framework
from services.detector.providers.node.package_manager import (
    detect_node_version,
    detect_package_manager,
)
from shared.detection import Detection
from shared.plan import BuildPlan
from shared.source import SourceTree

DEP_SERVICES = {
    "pg": "postgres", "pg-promise": "postgres", "postgres": "postgres", "slonik": "postgres",
    "@neondatabase/serverless": "postgres", "@vercel/postgres": "postgres", "pg-pool": "postgres",
    "mysql": "mysql", "mysql2": "mysql", "mariadb": "mysql", "@planetscale/database": "mysql",
    "mongoose": "mongodb", "mongodb": "mongodb", "@typegoose/typegoose": "mongodb",
    "redis": "redis", "ioredis": "redis", "bull": "redis", "bullmq": "redis", "@upstash/redis": "redis",
    "connect-redis": "redis", "amqplib": "rabbitmq", "amqp-connection-manager": "rabbitmq",
    "sqlite3": "sqlite", "better-sqlite3": "sqlite", "@libsql/client": "sqlite", "sqlite": "sqlite",
}
_PRISMA_PROVIDERS = {"postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "sqlite": "sqlite",
                     "mongodb": "mongodb", "cockroachdb": "postgres"}
SERVER_FILES = ("server.js", "index.js", "app.js", "main.js", "server.mjs", "index.mjs", "app.mjs",
                "src/index.js", "src/server.js", "src/app.js", "src/main.js", "bin/www", "server/index.js",
                "src/index.ts", "src/server.ts", "src/main.ts", "src/app.ts", "server.ts", "index.ts",
                "app.ts", "server/index.ts")
_PORT_CODE = (
    re.compile(r"process\.env\.PORT[^|?;\n]{0,12}(?:\|\||\?\?)\s*\(?\s*['\"]?(\d{2,5})"),
    re.compile(r"\.listen\(\s*(\d{2,5})\b"),
    re.compile(r"\b(?:const|let|var)\s+PORT\s*=\s*(?:[^;\n]*?(?:\|\||\?\?)\s*)?['\"]?(\d{2,5})\b", re.IGNORECASE),
    re.compile(r"\bport\s*:\s*(?:[^,\n]*?(?:\|\||\?\?)\s*)?['\"]?(\d{2,5})\b"),
    re.compile(r"Deno\.env\.get\(['\"]PORT['\"]\)[^|?;\n]{0,12}(?:\|\||\?\?)\s*['\"]?(\d{2,5})"),
)


def port_in_js(text: str) -> int | None:
    for rx in _PORT_CODE:
        m = rx.search(text)
        if m:
            return valid_port(m.group(1))
    return None


def all_deps(pkg: dict[str, Any]) -> dict[str, str]:
    deps: dict[str, str] = {}
    for key in ("devDependencies", "dependencies"):
        section = pkg.get(key)
        if isinstance(section, dict):
            deps.update({str(k): str(v) for k, v in section.items()})
    return deps


def run_cmd(pm: str, script: str) -> str:
    if script == "start" and pm in ("npm", "yarn", "pnpm"):
        return f"{pm} start"
    return f"{pm} run {script}"


# A start script that runs a static file server over the build (serve, http-server, sirv).
_FILE_SERVER = re.compile(r"(^|[\s;&|])(npx\s+(--yes\s+)?)?(serve|http-server|sirv)\s")


def is_dev_command(cmd: str) -> bool:
    return any(re.search(rf"(^|[\s;&|]){re.escape(m.strip())}(\s|$)", cmd) for m in DEV_START_MARKERS)


class NodeProvider:
    name = "node"

    def detect(self, src: SourceTree) -> bool:
        # A server file without package.json is still Node (weakly): a dependency-free script.
        return src.has_file("package.json") or any(src.has_file(f) for f in ("server.js", "app.js", "index.js"))

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="node")
        pkg = src.read_json("package.json") if src.has_file("package.json") else None
        if not src.has_file("package.json"):
            note(det, ".", "JavaScript server file without a package.json", W_MANIFEST // 2)
            pkg = {}
        elif not isinstance(pkg, dict):
            note(det, "package.json", "package.json is present but not a valid JSON object", W_MANIFEST // 2)
            pkg = {}
        else:
            note(det, "package.json", "package.json declares a Node project", W_MANIFEST)
        det.package_manager = detect_package_manager(src, pkg, det)
        det.runtime_version = detect_node_version(src, pkg, det)
        deps = all_deps(pkg)
        scripts = scripts if isinstance(scripts := pkg.get("scripts"), dict) else {}
        scripts = {str(k): str(v) for k, v in scripts.items()}
        for dep, service in DEP_SERVICES.items():
            if dep in deps:
                add_service(det, service, "package.json", f"depends on {dep}")
        self._prisma(src, det)
        found = find_framework(deps)
        fw: Framework | None = None
        if found:
            fw, dep = found
            det.framework = fw.id
            note(det, "package.json", f"depends on {dep}", W_FRAMEWORK)
        self._build_and_start(src, det, pkg, scripts, fw)
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        return node_plan.plan(det, src)

    def _prisma(self, src: SourceTree, det: Detection) -> None:
        for rel in ("prisma/schema.prisma", "schema.prisma", *src.glob("prisma/**/*.prisma", max_depth=3)):
            text = src.read_text(rel)
            if not text:
                continue
            m = re.search(r"datasource\s+\w+\s*\{[^}]*provider\s*=\s*\"(\w+)\"", text, re.DOTALL)
            if m and m.group(1) in _PRISMA_PROVIDERS:
                add_service(det, _PRISMA_PROVIDERS[m.group(1)], rel, f"the Prisma datasource is {m.group(1)}")
            return

    def _build_and_start(self, src: SourceTree, det: Detection, pkg: dict[str, Any], scripts: dict[str, str],
                         fw: Framework | None) -> None:
        pm = det.package_manager or "npm"
        build = scripts.get("build")
        if build:
            det.build_command = run_cmd(pm, "build")
            note(det, "package.json", f"scripts.build: `{build}`")
        output_dir = self._static_output(src, det, fw, scripts)
        start = scripts.get("start")
        if output_dir and start and not is_dev_command(start) and _FILE_SERVER.search(start):
            # The app serves its own build (`serve -s _static -l $PORT`): its start script knows where the files
            # are (a build that moves them, a custom distDir) better than the framework's default does.
            note(det, "package.json", f"scripts.start serves the built files itself (`{start}`)")
            output_dir = None
            fw = None  # its default port is a web server's (80), not the file server's
        if output_dir:
            det.output_dir = output_dir
            det.internal_port = 80
            note(det, "package.json", f"{det.framework} builds a static site into {output_dir}/, served on port 80",
                 W_ENTRYPOINT)
            return
        port: int | None = None
        prod = next((k for k in ("start:prod", "start:production", "prod") if k in scripts), None)
        if prod and (not start or is_dev_command(start) or start.startswith("nest start")):
            det.start_command = run_cmd(pm, prod)
            note(det, "package.json", f"scripts.{prod}: `{scripts[prod]}` (the production start)", W_ENTRYPOINT)
            port = port_from_command(scripts[prod])
        elif start and not is_dev_command(start):
            det.start_command = run_cmd(pm, "start")
            note(det, "package.json", f"scripts.start: `{start}`", W_ENTRYPOINT)
            port = port_from_command(start)
            if port:
                note(det, "package.json", f"the start script binds port {port}")
        elif fw and fw.start:
            det.start_command = fw.start if fw.start.startswith("node ") else f"npx {fw.start}"
            note(det, "package.json", f"{fw.id}'s production server: `{det.start_command}`", W_ENTRYPOINT)
        else:
            entry = self._entry_file(src, pkg, start)
            if entry:
                if pm == "bun":
                    det.start_command = f"bun run {entry}"
                elif entry.endswith(".ts"):
                    det.start_command = f"npx tsx {entry}"
                else:
                    det.start_command = f"node {entry}"
                note(det, entry, f"{entry} is the entry file", W_ENTRYPOINT)
        if det.start_command is None:
            det.start_command_help = (
                'No start command found: add `"start": "node server.js"` (your entry file) to the scripts in '
                "package.json, or a Procfile with `web: <command>`.")
        if port is None:
            port, file = self._port_from_code(src, pkg, start)
            if port:
                note(det, file, f"{file} listens on port {port}", 5)
        det.internal_port = port or (fw.port if fw else 3000)

    def _static_output(self, src: SourceTree, det: Detection, fw: Framework | None, scripts: dict[str, str]
                       ) -> str | None:
        if fw is None:
            return None
        fid = fw.id
        if fid == "next":
            cfg = self._config_text(src, "next.config")
            if re.search(r"output\s*:\s*['\"]export['\"]", cfg) or "next export" in scripts.get("build", ""):
                # A custom distDir receives the export too (Next 13.3+), else `out/`.
                dist = re.search(r"distDir\s*:\s*['\"]([^'\"]+)['\"]", cfg)
                return posixpath.normpath(dist.group(1)) if dist else "out"
            return None
        if fid == "nuxt":
            return ".output/public" if "nuxt generate" in scripts.get("build", "") else None
        if fid == "astro":
            cfg = self._config_text(src, "astro.config")
            server = re.search(r"output\s*:\s*['\"](server|hybrid)['\"]", cfg) or "adapter" in cfg
            return None if server else "dist"
        if fid == "sveltekit":
            return "build" if "@sveltejs/adapter-static" in all_deps(src.read_json("package.json") or {}) else None
        if fw.output_dir is None:
            return None
        if fid in ("vite", "vue") and self._config_text(src, "vite.config"):
            cfg = self._config_text(src, "vite.config")
            m = re.search(r"outDir\s*:\s*['\"]([^'\"]+)['\"]", cfg)
            # Vite resolves outDir against `root` (default: the app directory): `root: "./src"` + "../dist" is dist.
            root = re.search(r"\broot\s*:\s*['\"]([^'\"]+)['\"]", cfg)
            out = posixpath.normpath(posixpath.join(root.group(1) if root else ".", m.group(1) if m else "dist"))
            return out
        if fid == "angular":
            ang: Any = src.read_json("angular.json") if src.has_file("angular.json") else None
            try:
                project = next(iter(ang["projects"].values()))
                out = project["architect"]["build"]["options"]["outputPath"]
                out = out if isinstance(out, str) else out.get("base", "dist")
                builder = project["architect"]["build"].get("builder", "")
                return f"{out}/browser" if builder.endswith(":application") else out
            except (TypeError, KeyError, StopIteration, AttributeError):
                return "dist"
        return fw.output_dir

    def _config_text(self, src: SourceTree, stem: str) -> str:
        for ext in (".js", ".mjs", ".ts", ".cjs", ".mts"):
            text = src.read_text(stem + ext)
            if text is not None:
                return text
        return ""

    def _entry_file(self, src: SourceTree, pkg: dict[str, Any], start: str | None) -> str | None:
        if start:
            m = re.search(r"(?:node|nodemon|ts-node|tsx)\s+(?:--?\S+\s+)*([\w./-]+\.(?:m?js|cjs|ts))", start)
            if m and src.has_file(m.group(1).removeprefix("./")):
                return m.group(1).removeprefix("./")
        for key in ("main", "module"):  # bun init writes "module": "index.ts"
            main = pkg.get(key)
            if isinstance(main, str) and src.has_file(main.removeprefix("./")):
                return main.removeprefix("./")
        return next((f for f in SERVER_FILES if src.has_file(f)), None)

    def _port_from_code(self, src: SourceTree, pkg: dict[str, Any], start: str | None) -> tuple[int | None, str]:
        files = []
        entry = self._entry_file(src, pkg, start)
        if entry:
            files.append(entry)
        files += [f for f in SERVER_FILES if f not in files]
        for f in files:
            text = src.read_text(f)
            if text is None:
                continue
            port = port_in_js(text)
            if port:
                return port, f
        return None, ""


"""Go: go.mod (modules), the main package, web frameworks (gin, echo, fiber, chi, ...) and their ports."""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath

from services.detector.providers.base import (
    W_ENTRYPOINT,
    W_FRAMEWORK,
    W_MANIFEST,
    W_VERSION,
    note,
    valid_port,
)
from services.detector.providers.common import add_service
from shared.detection import Detection
from shared.plan import DEFAULT_VERSIONS, BuildPlan, image_version, major_minor, serving_port
from shared.source import SourceTree

# Module path prefix -> framework id; the first required one wins (gin before net/http routers).
FRAMEWORKS = (
    ("github.com/gin-gonic/gin", "gin", 8080), ("github.com/labstack/echo", "echo", 1323),
    ("github.com/gofiber/fiber", "fiber", 3000), ("github.com/go-chi/chi", "chi", 8080),
    ("github.com/beego/beego", "beego", 8080), ("github.com/gobuffalo/buffalo", "buffalo", 3000),
    ("github.com/gorilla/mux", "gorilla", 8080), ("github.com/julienschmidt/httprouter", "httprouter", 8080),
    ("github.com/pocketbase/pocketbase", "pocketbase", 8090), ("github.com/cloudwego/hertz", "hertz", 8888),
    ("github.com/kataras/iris", "iris", 8080),
)
DEP_SERVICES = (
    ("github.com/lib/pq", "postgres"), ("github.com/jackc/pgx", "postgres"), ("gorm.io/driver/postgres", "postgres"),
    ("github.com/go-pg/pg", "postgres"), ("github.com/uptrace/bun/driver/pgdriver", "postgres"),
    ("github.com/go-sql-driver/mysql", "mysql"), ("gorm.io/driver/mysql", "mysql"),
    ("go.mongodb.org/mongo-driver", "mongodb"), ("github.com/redis/go-redis", "redis"),
    ("github.com/go-redis/redis", "redis"), ("github.com/gomodule/redigo", "redis"),
    ("github.com/mattn/go-sqlite3", "sqlite"), ("modernc.org/sqlite", "sqlite"), ("gorm.io/driver/sqlite", "sqlite"),
    ("github.com/glebarez/sqlite", "sqlite"), ("github.com/rabbitmq/amqp091-go", "rabbitmq"),
    ("github.com/streadway/amqp", "rabbitmq"),
)
_PORT = (
    re.compile(r"os\.Getenv\(\"PORT\"\)[\s\S]{0,200}?(?:port|PORT|addr)\s*=\s*\"?:?(\d{2,5})\""),
    re.compile(r"(?:ListenAndServe|Run|Listen|Start|ListenAndServeTLS)\(\s*\"[\w.]*:(\d{2,5})\""),
    re.compile(r"(?:Addr|addr|port|Port)\s*[:=]+\s*\"[\w.]*:(\d{2,5})\""),
    re.compile(r"getEnv\w*\(\s*\"PORT\"\s*,\s*\"?:?(\d{2,5})\""),
)


def requires(gomod: str) -> list[str]:
    """Module paths from the require directives of a go.mod."""
    mods = re.findall(r"^\s*require\s+([^\s(]+)\s", gomod, re.MULTILINE)
    for block in re.findall(r"^\s*require\s*\((.*?)\)", gomod, re.MULTILINE | re.DOTALL):
        mods += re.findall(r"^\s*([^\s/][^\s]*)\s+v", block, re.MULTILINE)
    return mods


def port_in_go(text: str) -> int | None:
    for rx in _PORT:
        m = rx.search(text)
        if m:
            return valid_port(m.group(1))
    return None


class GoProvider:
    name = "go"

    def detect(self, src: SourceTree) -> bool:
        return src.has_file("go.mod") or bool(src.glob("*.go", max_depth=0))

    def analyze(self, src: SourceTree) -> Detection:
        det = Detection(stack="go", package_manager="go")
        gomod = src.read_text("go.mod") or ""
        if gomod:
            note(det, "go.mod", "go.mod declares a Go module", W_MANIFEST)
            if src.has_file("go.sum"):
                note(det, "go.sum", "go.sum pins the module versions", 10)
        else:
            note(det, "main.go", "Go source without a go.mod", W_MANIFEST // 2)
        m = re.search(r"^\s*toolchain\s+go(\d+\.\d+)", gomod, re.MULTILINE) or \
            re.search(r"^\s*go\s+(\d+\.\d+)", gomod, re.MULTILINE)
        if m:
            det.runtime_version = m.group(1)
            note(det, "go.mod", f"go.mod asks for Go {m.group(1)}", W_VERSION)
        mods = requires(gomod)
        default_port = 8080
        for prefix, fw, fw_port in FRAMEWORKS:
            if any(mod.startswith(prefix) for mod in mods):
                det.framework, default_port = fw, fw_port
                note(det, "go.mod", f"requires {prefix}", W_FRAMEWORK)
                break
        for prefix, service in DEP_SERVICES:
            if any(mod.startswith(prefix) for mod in mods):
                add_service(det, service, "go.mod", f"requires {prefix}")
        main_dir = self._main_package(src, gomod)
        if main_dir is None:
            det.start_command_help = "No `package main` found: add a main.go at the root or under cmd/<name>/."
            return det
        target = "." if main_dir == "." else f"./{main_dir}"
        det.build_command = f"go build -o bin/app {target}"
        det.start_command = "./bin/app"
        note(det, main_dir if main_dir != "." else "main.go", f"the main package is {target}", W_ENTRYPOINT)
        port = None
        for f in self._go_files(src, main_dir):
            port = port_in_go(src.read_text(f) or "")
            if port:
                note(det, f, f"{f} listens on port {port}")
                break
        det.internal_port = port or default_port
        return det

    def plan(self, det: Detection, src: SourceTree) -> BuildPlan:
        """A static binary built in a Go image and run alone in a slim one; the main package is the build target."""
        match = re.search(r"^go (\d+\.\d+)", src.read_text("go.mod") or "", re.MULTILINE)
        version = major_minor(det.runtime_version or (match[1] if match else None), DEFAULT_VERSIONS["go"])
        words = shlex.split(det.build_command or "go build -o bin/app .")
        target = "."
        if "-o" in words:
            rest = words[words.index("-o") + 2:]
            target = next((w for w in rest if not w.startswith("-")), ".")
        manifests = [m for m in ("go.mod", "go.sum") if src.has_file(m)]
        notes: list[str] = []
        version = image_version("go", version, notes)
        if "go.mod" not in manifests:
            # A main package without a module: the build makes one (`go mod init`), which only works for code that
            # imports the standard library alone, like `go run main.go` does.
            notes.append("No go.mod: the build runs `go mod init app`. Commit go.mod (and go.sum) to pin "
                         "dependencies.")
        return BuildPlan("go", det.framework, "go", version, serving_port("go", det.internal_port, False),
                         "/usr/local/bin/app", det.build_command, manifests, template="go/Dockerfile.j2",
                         target=target, artifact="app", locked="go.mod" in manifests, notes=notes)

    def _go_files(self, src: SourceTree, main_dir: str) -> list[str]:
        prefix = "" if main_dir == "." else f"{main_dir}/"
        own = [f for f in src.glob(f"{prefix}*.go") if "/" not in f[len(prefix):] and not f.endswith("_test.go")]
        rest = [f for f in src.glob("**/*.go", max_depth=3) if f not in own and not f.endswith("_test.go")]
        return (own + rest)[:60]

    def _main_package(self, src: SourceTree, gomod: str) -> str | None:
        for f in src.glob("*.go", max_depth=0):
            if re.search(r"^package main\b", src.read_text(f) or "", re.MULTILINE):
                return "."
        module = re.search(r"^\s*module\s+(\S+)", gomod, re.MULTILINE)
        base = module.group(1).rsplit("/", 1)[-1] if module else ""
        mains = sorted({str(PurePosixPath(f).parent) for f in src.glob("cmd/*/main.go")})
        if mains:
            for name in (base, "server", "api", "web", "app", "main"):
                if f"cmd/{name}" in mains:
                    return f"cmd/{name}"
            return mains[0]
        for f in src.glob("**/main.go", max_depth=3):
            if re.search(r"^package main\b", src.read_text(f) or "", re.MULTILINE):
                return str(PurePosixPath(f).parent)
        return None

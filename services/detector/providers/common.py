"""Facts that do not belong to one language: Docker files, compose services, Procfile, env examples, README."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.detector.providers.base import W_WEAK, note, port_from_command, valid_port
from shared.detection import Detection
from shared.source import SourceTree

DOCKERFILES = ("Dockerfile", "dockerfile", "Containerfile")
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
ENV_EXAMPLES = (".env.example", ".env.sample", ".env.template", ".env.dist", ".env.development", "env.example",
                ".env.local.example", "example.env", ".env")

# The order of `detected_db` when an app uses several: the system of record first, caches and queues after.
DB_PRIORITY = ("postgres", "mysql", "mongodb", "sqlite", "redis", "rabbitmq")

# Compose image names (without registry/tag) to the service they provide.
_IMAGE_SERVICES = {
    "postgres": "postgres", "postgis/postgis": "postgres", "bitnami/postgresql": "postgres",
    "timescale/timescaledb": "postgres", "pgvector/pgvector": "postgres", "supabase/postgres": "postgres",
    "mysql": "mysql", "mariadb": "mysql", "bitnami/mysql": "mysql", "bitnami/mariadb": "mysql",
    "redis": "redis", "bitnami/redis": "redis", "redis/redis-stack": "redis", "valkey/valkey": "redis",
    "eqalpha/keydb": "redis", "mongo": "mongodb", "bitnami/mongodb": "mongodb", "mongodb/mongodb-community-server":
    "mongodb", "rabbitmq": "rabbitmq", "bitnami/rabbitmq": "rabbitmq",
}

# URL schemes in env examples and config.
_URL_SERVICES = (
    (re.compile(r"\bpostgres(?:ql)?(?:\+\w+)?://", re.IGNORECASE), "postgres"),
    (re.compile(r"\b(?:mysql|mariadb)(?:\+\w+)?://", re.IGNORECASE), "mysql"),
    (re.compile(r"\bmongodb(?:\+srv)?://", re.IGNORECASE), "mongodb"),
    (re.compile(r"\brediss?://", re.IGNORECASE), "redis"),
    (re.compile(r"\bamqps?://", re.IGNORECASE), "rabbitmq"),
    (re.compile(r"\bsqlite(?:\+\w+)?:///?", re.IGNORECASE), "sqlite"),
)
_ENV_KEYS = (
    (re.compile(r"^\s*DB_CONNECTION\s*=\s*['\"]?pgsql", re.MULTILINE), "postgres"),
    (re.compile(r"^\s*DB_CONNECTION\s*=\s*['\"]?(?:mysql|mariadb)", re.MULTILINE), "mysql"),
    (re.compile(r"^\s*DB_CONNECTION\s*=\s*['\"]?sqlite", re.MULTILINE), "sqlite"),
    (re.compile(r"^\s*(?:REDIS_URL|REDIS_HOST)\s*=", re.MULTILINE), "redis"),
    (re.compile(r"^\s*(?:MONGO_URL|MONGODB_URI|MONGO_URI|MONGODB_URL)\s*=", re.MULTILINE), "mongodb"),
    (re.compile(r"^\s*(?:POSTGRES_PASSWORD|POSTGRES_USER|PGHOST|PGUSER|POSTGRES_DB)\s*=", re.MULTILINE), "postgres"),
    (re.compile(r"^\s*(?:MYSQL_PASSWORD|MYSQL_ROOT_PASSWORD|MYSQL_HOST)\s*=", re.MULTILINE), "mysql"),
    (re.compile(r"^\s*(?:RABBITMQ_URL|AMQP_URL|RABBITMQ_HOST)\s*=", re.MULTILINE), "rabbitmq"),
)


def add_service(det: Detection, service: str, file: str, reason: str) -> None:
    """Record a backing service the app needs (postgres, redis, ...) with its evidence."""
    if service not in det.services:
        det.services.append(service)
    note(det, file, reason)


def pick_db(services: list[str]) -> str:
    return next((s for s in DB_PRIORITY if s in services), "none")


# -- Docker ------------------------------------------------------------------------------------------------
@dataclass
class DockerFacts:
    dockerfile: str | None = None
    compose: str | None = None
    expose: int | None = None
    # Compose services that build from this directory ("." or "./"): the app itself is in the compose file.
    builds_here: bool = False
    builds_elsewhere: bool = False
    compose_port: int | None = None  # the container side of the first published port
    services: dict[str, str] = field(default_factory=dict)  # service -> image it came from


def docker_facts(src: SourceTree) -> DockerFacts:
    facts = DockerFacts(dockerfile=src.first_file(*DOCKERFILES), compose=src.first_file(*COMPOSE_FILES))
    if facts.dockerfile:
        text = src.read_text(facts.dockerfile) or ""
        # The last EXPOSE of the last stage is what the final image listens on.
        ports = re.findall(r"^\s*EXPOSE\s+(\d{2,5})", text, re.MULTILINE | re.IGNORECASE)
        if ports:
            facts.expose = valid_port(ports[-1])
    if facts.compose:
        data = src.read_yaml(facts.compose)
        services = data.get("services") if isinstance(data, dict) else None
        if isinstance(services, dict):
            for svc in services.values():
                if not isinstance(svc, dict):
                    continue
                image = str(svc.get("image") or "")
                name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
                name = name.removeprefix("docker.io/").removeprefix("library/")
                if name in _IMAGE_SERVICES:
                    facts.services.setdefault(_IMAGE_SERVICES[name], image)
                elif facts.compose_port is None:
                    for spec in svc.get("ports") or []:
                        target = spec.get("target") if isinstance(spec, dict) else str(spec).split("/")[0]
                        port = valid_port(str(target).rsplit(":", 1)[-1])
                        if port:
                            facts.compose_port = port
                            break
                build = svc.get("build")
                ctx = build.get("context", ".") if isinstance(build, dict) else build
                if ctx is None:
                    continue
                if str(ctx).strip().rstrip("/") in (".", "./", ""):
                    facts.builds_here = True
                else:
                    facts.builds_elsewhere = True
    return facts


def apply_docker(det: Detection, facts: DockerFacts) -> None:
    if facts.dockerfile:
        det.has_dockerfile = True
        note(det, facts.dockerfile, "a Dockerfile is present (it sets has_dockerfile, not the stack)")
    if facts.compose:
        det.has_compose = True
        note(det, facts.compose, "a compose file is present")
    for service, image in facts.services.items():
        add_service(det, service, facts.compose or "compose", f"compose runs the image {image}")


# -- Procfile ----------------------------------------------------------------------------------------------
def procfile(src: SourceTree) -> dict[str, str]:
    """Process types from a Procfile (`web: gunicorn app:app`)."""
    text = src.read_text("Procfile")
    if not text:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_-]+)\s*:\s*(.+?)\s*$", line)
        if m and not line.lstrip().startswith("#"):
            out.setdefault(m.group(1), m.group(2))
    return out


_PROCFILE_STACKS = (
    (r"^(?:gunicorn|uvicorn|python3?|hypercorn|daphne|waitress-serve|streamlit|flask)\b", "python"),
    (r"^(?:node|npm|yarn|pnpm|npx)\b", "node"), (r"^bun\b", "node"), (r"^deno\b", "deno"),
    (r"^(?:bundle|rails|puma|rackup|ruby|unicorn)\b", "ruby"), (r"^(?:php|heroku-php-\w+|vendor/bin)\b", "php"),
    (r"^java\b", "java"), (r"^dotnet\b", "dotnet"), (r"^(?:mix|elixir)\b", "elixir"),
)


def stack_from_procfile(src: SourceTree) -> str | None:
    web = procfile(src).get("web", "")
    for pattern, stack in _PROCFILE_STACKS:
        if re.match(pattern, web.strip()):
            return stack
    return None


def apply_procfile(src: SourceTree, det: Detection) -> None:
    procs = procfile(src)
    web = procs.get("web")
    if not web:
        return
    if det.stack == "docker":
        return
    det.start_command = web
    note(det, "Procfile", f"the Procfile's web process: `{web}`", 10)
    port = port_from_command(web)
    config = None if port else _gunicorn_config(src, web)
    if config:
        # `gunicorn -c gunicorn_config.py app:app`: the port is the config file's `bind`.
        match = re.search(r"^bind\s*=\s*\[?\s*['\"][^'\"]*:(\d{2,5})['\"]", src.read_text(config) or "", re.MULTILINE)
        port = int(match[1]) if match else None
    if port:
        det.internal_port = port
        note(det, config or "Procfile", f"the web process binds port {port}")
    elif "$PORT" in web or "${PORT" in web:
        note(det, "Procfile", f"the web process binds $PORT (set to {det.internal_port})")


def _gunicorn_config(src: SourceTree, command: str) -> str | None:
    """The config file a gunicorn command reads: `-c FILE` / `--config FILE`, else gunicorn.conf.py if present."""
    words = command.split()
    if not words or words[0] != "gunicorn":
        return None
    for i, word in enumerate(words):
        if word in ("-c", "--config") and i + 1 < len(words):
            name = words[i + 1].removeprefix("python:")
            return name if src.has_file(name) else None
        if word.startswith("--config="):
            name = word.split("=", 1)[1]
            return name if src.has_file(name) else None
    return "gunicorn.conf.py" if src.has_file("gunicorn.conf.py") else None


# -- env examples and config -------------------------------------------------------------------------------
def services_from_text(text: str) -> list[str]:
    found = []
    for rx, service in _URL_SERVICES:
        if rx.search(text) and service not in found:
            found.append(service)
    return found


def scan_env_examples(src: SourceTree, det: Detection) -> None:
    for name in ENV_EXAMPLES:
        text = src.read_text(name)
        if not text:
            continue
        for service in services_from_text(text):
            add_service(det, service, name, f"{name} has a {service} connection URL")
        for rx, service in _ENV_KEYS:
            if rx.search(text):
                add_service(det, service, name, f"{name} configures {service}")


# -- README ------------------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_RUN_LINE = re.compile(
    r"^\s*(?:\$\s*)?((?:npm|yarn|pnpm|bun)\s+(?:run\s+)?(?:start|serve|prod)\b.*|node\s+\S+\.m?js\b.*|"
    r"python3?\s+(?:-m\s+)?\S+(?:\.py)?(?:\s+runserver)?\b.*|flask\s+run\b.*|uvicorn\s+\S+.*|"
    r"gunicorn\s+.*|go\s+run\s+.*|cargo\s+run\b.*|deno\s+(?:run|task)\s+.*|"
    r"(?:bundle\s+exec\s+)?rails\s+s(?:erver)?\b.*|mix\s+phx\.server.*|dotnet\s+run\b.*|"
    r"php\s+(?:artisan\s+serve|-S)\b.*|streamlit\s+run\s+.*|java\s+-jar\s+.*)$", re.MULTILINE)


def readme_run_commands(src: SourceTree) -> tuple[str | None, list[str]]:
    """Run commands from fenced code blocks in the README: weak hints, never stronger than a manifest."""
    name = src.first_file("README.md", "readme.md", "Readme.md", "README.MD", "README.rst", "README")
    if not name:
        return None, []
    text = src.read_text(name) or ""
    cmds: list[str] = []
    for block in _FENCE.findall(text):
        for m in _RUN_LINE.finditer(block):
            cmd = m.group(1).strip()
            if cmd not in cmds and not re.search(r"install|\bdev\b|venv|\bpip\b|pytest|test\b|lint", cmd):
                cmds.append(cmd)
    return name, cmds[:5]


def apply_readme(det: Detection, src: SourceTree) -> None:
    name, cmds = readme_run_commands(src)
    if not name or not cmds:
        return
    note(det, name, f"README shows how to run it: `{cmds[0]}`", W_WEAK)
    if det.start_command is None and det.stack not in ("static", "docker", "unknown"):
        det.start_command = cmds[0]
        note(det, name, "start command taken from the README (weak: no manifest names one)")

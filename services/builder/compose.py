"""docker-compose.yml rendering: the app, each backing service it needs, a network per deployment,
labels on everything, generated passwords, optional resource limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from services.builder.values import comment
from shared.docker import Owner


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: str
    port: int
    data_path: str
    healthcheck: list[str]


SERVICES: dict[str, ServiceSpec] = {
    "postgres": ServiceSpec(
        "postgres", "postgres:16", 5432, "/var/lib/postgresql/data",
        # Over TCP: during its first start the server runs on the socket only while it initialises.
        ["CMD-SHELL", "pg_isready -h 127.0.0.1 -U app -d app"],
    ),
    "mysql": ServiceSpec(
        "mysql", "mysql:8.4", 3306, "/var/lib/mysql",
        ["CMD-SHELL", "mysqladmin ping -h 127.0.0.1 -u app -p$$MYSQL_PASSWORD --silent"],
    ),
    "redis": ServiceSpec("redis", "redis:7", 6379, "/data", ["CMD", "redis-cli", "ping"]),
    "mongodb": ServiceSpec(
        "mongodb", "mongo:7", 27017, "/data/db",
        ["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping')"],
    ),
    "rabbitmq": ServiceSpec(
        "rabbitmq", "rabbitmq:3.13", 5672, "/var/lib/rabbitmq", ["CMD", "rabbitmq-diagnostics", "-q", "ping"],
    ),
}


def _ref(key: str) -> str:
    """A generated password as the compose file names it: its value lives encrypted in Postgres and reaches
    Compose only through the runner's interpolation environment, never a file."""
    return f"${{{key}:?Portside sets the generated password}}"


def _service_env(kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """(environment of the service, connection environment for the app)."""
    if kind == "postgres":
        password = _ref("PORTSIDE_POSTGRES_PASSWORD")
        return (
            {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": password, "POSTGRES_DB": "app"},
            {"DATABASE_URL": f"postgresql://app:{password}@postgres:5432/app"},
        )
    if kind == "mysql":
        password = _ref("PORTSIDE_MYSQL_PASSWORD")
        return (
            {"MYSQL_USER": "app", "MYSQL_PASSWORD": password, "MYSQL_DATABASE": "app",
             "MYSQL_ROOT_PASSWORD": _ref("PORTSIDE_MYSQL_ROOT_PASSWORD")},
            {"DATABASE_URL": f"mysql://app:{password}@mysql:3306/app"},
        )
    if kind == "redis":
        return {}, {"REDIS_URL": "redis://redis:6379/0"}
    if kind == "rabbitmq":
        password = _ref("PORTSIDE_RABBITMQ_PASSWORD")
        return (
            {"RABBITMQ_DEFAULT_USER": "app", "RABBITMQ_DEFAULT_PASS": password},
            {"AMQP_URL": f"amqp://app:{password}@rabbitmq:5672/", "RABBITMQ_URL": f"amqp://app:{password}@rabbitmq:5672/"},
        )
    if kind == "mongodb":
        password = _ref("PORTSIDE_MONGODB_PASSWORD")
        return (
            {"MONGO_INITDB_ROOT_USERNAME": "app", "MONGO_INITDB_ROOT_PASSWORD": password},
            {"MONGODB_URI": f"mongodb://app:{password}@mongodb:27017/?authSource=admin"},
        )
    return {}, {}


class _Dumper(yaml.SafeDumper):
    """Plain YAML for people: no &anchors / *aliases when the same labels appear on several services."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_compose(
    *,
    owner: Owner,
    repo_name: str,
    port: int | None,
    services: list[str],
    cpus: float | None = None,
    memory: str | None = None,
    dockerfile: str = ".deployment/Dockerfile",
) -> str:
    """The app (built by Portside: compose only runs the image) and each backing service it needs.
    `port` None: a worker that publishes nothing."""
    labels = owner.labels
    wanted = [s for s in dict.fromkeys(services) if s in SERVICES]
    app_env: dict[str, str] = {"PORT": str(port), "HOST": "0.0.0.0"} if port else {}
    app: dict[str, Any] = {
        "build": {"context": "..", "dockerfile": dockerfile},
        "image": f"${{PORTSIDE_IMAGE:-{owner.image_repo}:latest}}",
        "restart": "unless-stopped",
    }
    if port:
        app["ports"] = [
            f"${{PORTSIDE_BIND_ADDRESS:-0.0.0.0}}:${{PORTSIDE_HOST_PORT:?Portside sets the host port}}:{port}"
        ]
    app["environment"] = app_env
    # A process in the app cannot gain privileges (setuid binaries) beyond the user it starts as.
    app["security_opt"] = ["no-new-privileges:true"]
    app["labels"] = labels
    doc: dict[str, Any] = {"services": {"app": app}}
    volumes: dict[str, Any] = {}
    for kind in wanted:
        spec = SERVICES[kind]
        service_env, connection_env = _service_env(kind)
        app_env.update(connection_env)
        service: dict[str, Any] = {"image": spec.image, "restart": "unless-stopped"}
        if service_env:
            service["environment"] = service_env
        service["volumes"] = [f"{kind}-data:{spec.data_path}"]
        service["healthcheck"] = {"test": spec.healthcheck, "interval": "5s", "timeout": "5s", "retries": 20}
        service["labels"] = labels
        doc["services"][kind] = service
        volumes[f"{kind}-data"] = {"labels": labels}
    if not app_env:
        del app["environment"]
    if wanted:
        app["depends_on"] = {kind: {"condition": "service_healthy"} for kind in wanted}
    if cpus or memory:
        limits: dict[str, Any] = {}
        if cpus:
            limits["cpus"] = str(cpus)
        if memory:
            limits["memory"] = memory
        app["deploy"] = {"resources": {"limits": limits}}
    if volumes:
        doc["volumes"] = volumes
    doc["networks"] = {"default": {"name": owner.project, "labels": labels}}
    header = (
        f"# Generated by Portside for deployment {owner.deployment_id} ({comment(repo_name)}).\n"
        "# Portside runs the copy it keeps in its database (edit it through the web page or\n"
        "# PUT /api/deployments/<id>/files, validated first); a copy on disk under .deployment/ is an export\n"
        "# to read. It sets PORTSIDE_IMAGE, PORTSIDE_HOST_PORT and PORTSIDE_BIND_ADDRESS for `docker compose up`.\n"
    )
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)

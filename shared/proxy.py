"""The one owner of the reverse proxy's configuration. Caddy is configured only through its admin API: the whole
config is rebuilt from Postgres (deployments with an upstream, their domain names, their host ports) and loaded
in one request, so applying is idempotent and any runner replica, the API or the reconciler may do it. A
Postgres advisory lock orders concurrent appliers, so the last load always reflects the last commit."""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings
from shared.db.models import Deployment, DomainName
from shared.db.status import PORT_HOLDING
from shared.errors import ErrorCode, PortsideError

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key: "PROXY" in ASCII, so it cannot meet another lock by chance.
LOCK_KEY = 0x50524F5859
MAX_DOMAINS = 20
# Names under these suffixes cannot get a public certificate: Caddy's internal CA signs them.
LOCAL_SUFFIXES = (".localhost", ".local", ".test", ".internal", ".example", ".invalid", ".lan", ".home.arpa",
                  ".localdomain")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_domain(name: str) -> str:
    """A host name in canonical form (lower case, no trailing dot), or VALIDATION_ERROR saying what is wrong."""
    host = name.strip().lower().removesuffix(".")
    problem = None
    if not host or len(host) > 253:
        problem = "must be 1 to 253 characters"
    elif _is_ip(host):
        problem = "is an IP address; give a host name (requests reach an app by name)"
    elif "." not in host:
        problem = "needs at least one dot (e.g. app.example.com)"
    elif not all(_LABEL.match(label) for label in host.split(".")):
        problem = "may only hold letters, digits and hyphens in dot-separated labels of at most 63 characters"
    if problem:
        raise PortsideError(ErrorCode.INVALID_DOMAIN, f"Domain {name[:80]!r} {problem}.")
    return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def default_domain(settings: Settings, deployment_id: int, app_name: str) -> str | None:
    """`<app>-<id>.<base>` when PORTSIDE_BASE_DOMAIN is set."""
    if not settings.base_domain:
        return None
    slug = re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")[:40].strip("-") or "app"
    return f"{slug}-{deployment_id}.{settings.base_domain.lower().strip('.')}"


def is_public(settings: Settings, host: str) -> bool:
    """Whether the name gets its certificate from ACME (Let's Encrypt) rather than Caddy's internal CA."""
    return settings.acme and not host.endswith(LOCAL_SUFFIXES)


def domain_urls(settings: Settings, hosts: list[str]) -> list[str]:
    port = "" if settings.proxy_https_port == 443 else f":{settings.proxy_https_port}"
    return [f"https://{host}{port}" for host in hosts]


@dataclass(frozen=True)
class Route:
    deployment_id: int
    upstream: str
    hosts: tuple[str, ...]
    host_port: int | None


def _reverse_proxy(upstream: str) -> dict[str, Any]:
    # A dial that fails (a container going away at the switch) is tried again for a moment instead of
    # answering 502: this is what makes a switch lose no request.
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": upstream}],
        "load_balancing": {"try_duration": "3s", "try_interval": "50ms"},
    }


def build_config(settings: Settings, routes: list[Route]) -> dict[str, Any]:
    """Caddy's whole JSON config for these routes: one HTTPS server for every domain (HTTP redirects to it),
    and one plain-HTTP server per host port, so a host port follows its deployment's upstream too."""
    if not settings.proxy_admin:
        raise PortsideError(ErrorCode.PROXY_FAILED, "PORTSIDE_PROXY_ADMIN is not set; start Portside with "
                                                    "`portside up`, which starts the proxy.")
    storage = settings.home / "caddy"
    servers: dict[str, Any] = {}
    host_routes = []
    for route in sorted(routes, key=lambda r: r.deployment_id):
        if route.hosts:
            host_routes.append({
                "match": [{"host": list(route.hosts)}], "handle": [_reverse_proxy(route.upstream)], "terminal": True,
            })
        if route.host_port is not None:
            servers[f"port_{route.deployment_id}"] = {
                "listen": [f"{settings.bind_address}:{route.host_port}"],
                "routes": [{"handle": [_reverse_proxy(route.upstream)]}],
                "automatic_https": {"disable": True},
            }
    if host_routes:
        servers["domains"] = {
            "listen": [f":{settings.proxy_https_port}"], "routes": host_routes,
            "automatic_https": {"disable_redirects": True},
        }
        # Caddy's own redirect drops a non-default HTTPS port; this one keeps it.
        port = "" if settings.proxy_https_port == 443 else f":{settings.proxy_https_port}"
        servers["redirect"] = {
            "listen": [f":{settings.proxy_http_port}"],
            "routes": [{"handle": [{
                "handler": "static_response", "status_code": 308,
                "headers": {"Location": [f"https://{{http.request.host}}{port}{{http.request.uri}}"]},
            }]}],
        }
    hosts = sorted({h for r in routes for h in r.hosts})
    policies = []
    local = [h for h in hosts if not is_public(settings, h)]
    public = [h for h in hosts if is_public(settings, h)]
    if local:
        policies.append({"subjects": local, "issuers": [{"module": "internal"}]})
    if public:
        acme: dict[str, Any] = {"module": "acme"}
        if settings.acme_email:
            acme["email"] = settings.acme_email
        policies.append({"subjects": public, "issuers": [acme]})
    apps: dict[str, Any] = {
        "http": {
            "http_port": settings.proxy_http_port, "https_port": settings.proxy_https_port,
            "grace_period": f"{max(settings.drain_seconds, 1):.0f}s", "servers": servers,
        },
        # Never write Caddy's root into the system's trust store: an administrator decides that.
        "pki": {"certificate_authorities": {"local": {"install_trust": False}}},
    }
    if policies:
        apps["tls"] = {"automation": {"policies": policies}}
    return {
        "admin": {"listen": settings.proxy_admin},
        "storage": {"module": "file_system", "root": str(storage)},
        "apps": apps,
    }


async def load_routes(session: AsyncSession, settings: Settings) -> list[Route]:
    """Every deployment that holds its port and has a healthy container to send traffic to."""
    rows = (await session.execute(
        select(Deployment.id, Deployment.upstream, Deployment.assigned_port, Deployment.repo_name).where(
            Deployment.upstream.is_not(None), Deployment.status.in_([s.value for s in PORT_HOLDING])
        )
    )).all()
    if not rows:
        return []
    names: dict[int, list[str]] = {}
    for deployment_id, name in (await session.execute(
        select(DomainName.deployment_id, DomainName.name).where(
            DomainName.deployment_id.in_([r.id for r in rows])).order_by(DomainName.id)
    )).all():
        names.setdefault(deployment_id, []).append(name)
    routes = []
    for row in rows:
        hosts = list(names.get(row.id, []))
        default = default_domain(settings, row.id, row.repo_name)
        if default and default not in hosts:
            hosts.append(default)
        routes.append(Route(row.id, row.upstream, tuple(hosts), row.assigned_port))
    return routes


async def apply(session: AsyncSession, settings: Settings) -> int:
    """Load the routes Postgres describes into Caddy; returns how many deployments are routed. The caller's
    session must have committed what it wants routed; the advisory lock is released with this transaction."""
    if not settings.proxy_on:
        return 0
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    try:
        routes = await load_routes(session, settings)
        config = build_config(settings, routes)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                resp = await client.post(f"http://{settings.proxy_admin}/load", json=config)
        except httpx.HTTPError as exc:
            raise PortsideError(
                ErrorCode.PROXY_FAILED,
                f"The proxy's admin API at {settings.proxy_admin} did not answer ({exc.__class__.__name__}); "
                "is caddy running?",
            ) from exc
        if resp.status_code != 200:
            raise PortsideError(ErrorCode.PROXY_FAILED, f"The proxy refused its configuration: {resp.text[:500]}")
        return len(routes)
    finally:
        await session.commit()  # releases the lock


async def domains_of(session: AsyncSession, settings: Settings, deployment: Deployment) -> list[str]:
    """The deployment's names: the ones set through the API, then the default one."""
    names = list((await session.scalars(
        select(DomainName.name).where(DomainName.deployment_id == deployment.id).order_by(DomainName.id)
    )).all())
    default = default_domain(settings, deployment.id, deployment.repo_name)
    if default and default not in names:
        names.append(default)
    return names

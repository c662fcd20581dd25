"""PORTSIDE_REGISTRY's HTTP API v2 (the CNCF distribution registry, Debian's `docker-registry`): removing a
deployment's image tags there, as prune_images() removes them from the builder's engine. A tag goes by deleting
its manifest by digest (`DELETE /v2/<name>/manifests/<digest>`), which the registry allows only with
`storage: delete: enabled: true` in its config; the layers stay on its disk until its garbage collector runs
(`make registry-gc`, scripts/registry-gc.sh)."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field

import httpx
from docker import auth

from shared.docker.client import Owner

log = logging.getLogger(__name__)

# HEAD of a manifest answers with the digest of the kind asked for: every kind a push may have stored.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
)


@dataclass
class RegistryPrune:
    removed: list[str] = field(default_factory=list)
    # Why a tag that should have gone stayed (the registry refuses deletes, or does not answer).
    problems: list[str] = field(default_factory=list)


def base_url(registry: str) -> str:
    """Plain HTTP for a loopback registry (as dockerd allows without `insecure-registries`), HTTPS otherwise."""
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return f"{'http' if loopback else 'https'}://{registry}"


def _client(registry: str, timeout: float) -> httpx.Client:
    """A client with the credentials `docker login` stored for this registry on this machine (the ones the push
    used), as HTTP basic auth, which the distribution registry's htpasswd auth takes."""
    creds = auth.resolve_authconfig(auth.load_config(), registry) or {}
    basic = httpx.BasicAuth(creds["username"], creds["password"]) if creds.get("username") else None
    return httpx.Client(base_url=base_url(registry), timeout=timeout, auth=basic)


def _repositories(client: httpx.Client, prefix: str) -> list[str]:
    """Repositories of the catalog whose name is `prefix` or starts with `prefix-` (a deployment's own images:
    the app's, and `-<service>` for the compose services Portside builds)."""
    found: list[str] = []
    url: str | None = "/v2/_catalog?n=1000"
    while url:
        answer = client.get(url)
        answer.raise_for_status()
        found += [n for n in answer.json().get("repositories") or [] if n == prefix or n.startswith(prefix + "-")]
        link = answer.headers.get("Link", "")
        url = link.split(";")[0].strip(" <>") if 'rel="next"' in link else None
    return found


def _tags(client: httpx.Client, name: str) -> list[str]:
    answer = client.get(f"/v2/{name}/tags/list")
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return list(answer.json().get("tags") or [])


def _digest(client: httpx.Client, name: str, tag: str) -> str | None:
    answer = client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return answer.headers.get("Docker-Content-Digest")


def _age_key(tag: str) -> tuple[int, str]:
    # Portside tags app images with the build's Unix time; anything else (`latest`) counts as oldest.
    return (int(tag), tag) if tag.isdigit() else (-1, tag)


def prune_registry(registry: str, owner: Owner, keep_tags: set[str], keep_newest: int,
                   timeout: float = 30) -> RegistryPrune:
    """Remove the deployment's tags from `registry` except the newest `keep_newest` of each repository and those
    in `keep_tags` (full references, as in Postgres). A manifest that a kept tag also points at stays: deleting it
    would take that tag too. Never raises: what stayed, and why, is in `problems` (the next pass tries again)."""
    report = RegistryPrune()
    prefix = owner.image_repo.removeprefix(f"{registry}/")
    try:
        with _client(registry, timeout) as client:
            for name in _repositories(client, prefix):
                tags = sorted(_tags(client, name), key=_age_key, reverse=True)
                keep = {t for i, t in enumerate(tags) if i < keep_newest or f"{registry}/{name}:{t}" in keep_tags}
                digests = {t: _digest(client, name, t) for t in tags}
                kept_digests = {digests[t] for t in keep}
                for tag in tags:
                    digest = digests[tag]
                    if tag in keep or digest is None or digest in kept_digests:
                        continue
                    answer = client.delete(f"/v2/{name}/manifests/{digest}")
                    if answer.status_code in (202, 404):
                        report.removed.append(f"{registry}/{name}:{tag}")
                    elif answer.status_code == 405:
                        report.problems.append(
                            f"the registry refuses deletes; set `storage: delete: enabled: true` in its config "
                            f"({registry}/{name}:{tag} stays)")
                        return report
                    else:
                        report.problems.append(f"DELETE {name}@{digest}: HTTP {answer.status_code}")
    except (httpx.HTTPError, ValueError) as exc:
        report.problems.append(f"the registry at {registry} did not answer as expected ({exc.__class__.__name__}: "
                               f"{exc})")
    return report


def sweep_registry(registry: str, instance: str, keep_tags: dict[int, set[str]], keep_newest: int,
                   timeout: float = 30) -> RegistryPrune:
    """The janitor's pass over the registry, as sweep_images() over the engine: each deployment in `keep_tags`
    keeps its newest `keep_newest` and its tags in use; a deployment not in it (deleted while the registry did
    not answer, or before Portside removed tags there) keeps none."""
    report = RegistryPrune()
    prefix = f"{Owner(instance, 0, registry).image_repo.removeprefix(f'{registry}/').rsplit('-', 1)[0]}-"
    try:
        with _client(registry, timeout) as client:
            names = _repositories(client, prefix.rstrip("-"))
    except (httpx.HTTPError, ValueError) as exc:
        report.problems.append(f"the registry at {registry} did not answer as expected ({exc.__class__.__name__})")
        return report
    deployments = {int(head) for n in names if (head := n.removeprefix(prefix).split("-", 1)[0]).isdigit()}
    for deployment_id in sorted(deployments):
        kept = keep_tags.get(deployment_id)
        one = prune_registry(registry, Owner(instance, deployment_id, registry), kept or set(),
                             keep_newest if kept is not None else 0, timeout)
        report.removed += one.removed
        report.problems += one.problems
    return report

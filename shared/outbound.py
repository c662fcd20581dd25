"""The rule for every URL Portside fetches or calls on a user's behalf (git clones now, webhooks later): only
the schemes it names, and hosts that resolve to public addresses unless PORTSIDE_ALLOW_PRIVATE_NETWORKS is true,
so a repository URL cannot reach loopback services, the cloud metadata address or the LAN. Credentials in a URL are
split off: they are used for the call and never stored, returned or logged."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from shared.errors import ErrorCode, PortsideError

# scp-like ssh: `git@github.com:owner/repo.git`
SCP_LIKE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+):(?!//)(?P<path>[^\s]+)$")
DEFAULT_PORTS = {"https": 443, "http": 80, "ssh": 22, "git": 9418}


@dataclass(frozen=True)
class Target:
    """A checked URL: `url` carries no credentials (safe to store and show), `addresses` what the host resolved to
    when checked (callers pin them, so a second DNS answer cannot point elsewhere)."""

    url: str
    scheme: str
    host: str
    port: int | None
    username: str | None = None
    password: str | None = None
    addresses: tuple[str, ...] = ()


def _forbidden(message: str) -> PortsideError:
    return PortsideError(ErrorCode.GIT_URL_FORBIDDEN, message)


def address_is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, shared (CGNAT), link-local (cloud metadata), multicast,
    reserved or unspecified. An IPv4-mapped IPv6 address is judged as the IPv4 address it maps."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve_public(host: str, port: int | None, allow_private: bool) -> tuple[str, ...]:
    """The host's addresses; GIT_URL_FORBIDDEN when any of them is not public (and private ones are not allowed)."""
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise PortsideError(ErrorCode.GIT_CLONE_FAILED, f"The host `{host}` does not resolve; check the URL.") from exc
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        inner = [a for a in addresses if not address_is_public(a)]
        if inner:
            raise _forbidden(f"`{host}` resolves to {', '.join(inner)}, a loopback, private, link-local or multicast "
                             "address; Portside only fetches from public hosts. An administrator can set "
                             "PORTSIDE_ALLOW_PRIVATE_NETWORKS=true to allow hosts on the local network.")
    return addresses


def check_url(
    url: str, *, schemes: tuple[str, ...], allow_private: bool, allow_file: bool = False, what: str = "URL"
) -> Target:
    """Parse and check a URL a user gave; see the module's docstring."""
    url = url.strip()
    if any(ord(c) < 32 or c == "\x7f" for c in url):
        raise _forbidden(f"The {what} holds control characters.")
    if url.startswith("-"):
        raise _forbidden(f"The {what} may not start with `-`.")
    scp = SCP_LIKE.match(url) if "://" not in url else None
    if scp:
        if "ssh" not in schemes:
            raise _forbidden(f"The {what} must use {', '.join(schemes)}.")
        host = scp["host"]
        addresses = resolve_public(host, 22, allow_private)
        return Target(url, "ssh", host, 22, scp["user"], None, addresses)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not allow_file:
            raise _forbidden(f"file:// {what}s are refused; an administrator can set PORTSIDE_ALLOW_LOCAL_REPOS=true.")
        return Target(url, "file", "", None)
    if scheme not in schemes:
        raise _forbidden(f"`{scheme or url}` is not an allowed scheme for the {what}; use {', '.join(schemes)}.")
    host = (parts.hostname or "").lower()
    if not host:
        raise _forbidden(f"The {what} has no host.")
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError as exc:
        raise _forbidden(f"The {what} has an invalid port.") from exc
    addresses = resolve_public(host, port, allow_private)
    netloc = host if ":" not in host else f"[{host}]"
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return Target(clean, scheme, host, port, username, password, addresses)


def redact_url(text: str) -> str:
    """`scheme://user:secret@host` -> `scheme://***@host`, for anything that quotes a URL back."""
    return re.sub(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)

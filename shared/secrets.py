"""Keys kept in PORTSIDE_HOME (generated on first start, mode 0600), encryption of secrets at rest, and
redaction of secret values and credential shapes before text leaves Portside."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets as _secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.config import Settings

MASK = "********"


def home_key(settings: Settings, name: str) -> bytes:
    """The key stored in `PORTSIDE_HOME/keys/<name>`, created (32 random bytes, urlsafe base64) if missing.

    Every process of one installation shares PORTSIDE_HOME, so the API, the logstream service and the runner
    read the same key; creation is atomic (write a temporary file, then link it), so two processes starting
    at once agree on one key."""
    folder = settings.home / "keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / name
    try:
        return target.read_bytes().strip()
    except FileNotFoundError:
        pass
    tmp = folder / f".{name}.{os.getpid()}.{_secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(base64.urlsafe_b64encode(os.urandom(32)))
    try:
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return target.read_bytes().strip()


# The API vouches for a log request by sending the installation's `logstream` key in this header.
INTERNAL_HEADER = "X-Portside-Internal"


def internal_key(settings: Settings) -> str:
    return home_key(settings, "logstream").decode()


class Cipher:
    """Encrypts values at rest with the installation's `secrets` key (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(home_key(settings, "secrets"))

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret does not decrypt with this installation's key "
                f"({Path('PORTSIDE_HOME') / 'keys' / 'secrets'} changed?)"
            ) from exc


# Credential shapes worth hiding wherever they appear, whatever the deployment declared.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.DOTALL),
        "-----BEGIN PRIVATE KEY----- " + MASK + " -----END PRIVATE KEY-----",
    ),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:" + MASK + "@"),
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_access_key)(\s*[=:]\s*)\S+"), r"\1\2" + MASK),
    (re.compile(r"\bpst_[A-Za-z0-9_-]{20,}"), MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
)
# Values this short would mask ordinary words; they are still encrypted, just not searched for in text.
MIN_REDACTED_LENGTH = 4


def redact(text: str, values: Iterable[str] = ()) -> str:
    """`text` with every value in `values` and every credential shape replaced by a mask."""
    if not text:
        return text
    for value in sorted({v for v in values if v and len(v) >= MIN_REDACTED_LENGTH}, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


# `POSTGRES_PASSWORD: x`, `- MYSQL_ROOT_PASSWORD=x`, `RABBITMQ_DEFAULT_PASS: x` in a compose file.
_PASSWORD_LINE = re.compile(
    r"""^(\s*-?\s*["']?[A-Za-z0-9_]*(?:PASSWORD|_PASS|SECRET)["']?\s*[:=]\s*["']?)([^"'\s#]+)""", re.MULTILINE
)


def compose_passwords(text: str) -> list[str]:
    """The literal passwords in a compose file (generated database passwords); `${VAR}` references are not."""
    return [m.group(2) for m in _PASSWORD_LINE.finditer(text or "") if "${" not in m.group(2)]


def mask_compose(text: str | None) -> str | None:
    """A compose file as the API shows it: passwords (and URLs carrying them) masked."""
    if not text:
        return text
    return redact(text, compose_passwords(text))


def unmask_compose(incoming: str, stored: str | None) -> str:
    """An edited compose file that came back with masks: each masked line that is unchanged gets its stored
    line back. A masked line that was changed cannot be restored, so it is refused."""
    if MASK not in incoming:
        return incoming
    passwords = compose_passwords(stored or "")
    originals: dict[str, str] = {}
    for line in (stored or "").splitlines():
        originals.setdefault(redact(line, passwords), line)
    out = []
    for number, line in enumerate(incoming.splitlines(), 1):
        if MASK in line:
            if line not in originals:
                raise ValueError(
                    f"line {number} still holds {MASK} but differs from the saved file; "
                    "write the value itself or leave the line as it was"
                )
            line = originals[line]
        out.append(line)
    return "\n".join(out) + ("\n" if incoming.endswith("\n") else "")


# A password Portside generates for a deployment's backing service: compose files name it `${PORTSIDE_..._PASSWORD}`;
# its value is made once per deployment (a regenerate keeps it: the database volume was initialised with it),
# kept encrypted in `deployments.generated_secrets`, and handed to Compose only in the runner's environment.
_GENERATED_REF = re.compile(r"\$\{(PORTSIDE_[A-Z0-9_]+_PASSWORD)\b")


def generated_keys(*compose_texts: str | None) -> list[str]:
    """The generated passwords these compose files refer to, in order of first mention."""
    return list(dict.fromkeys(m.group(1) for text in compose_texts for m in _GENERATED_REF.finditer(text or "")))


def open_generated(settings: Settings, sealed: bytes | None) -> dict[str, str]:
    """A deployment's generated passwords, decrypted ({} when it has none)."""
    if not sealed:
        return {}
    values = json.loads(Cipher(settings).decrypt(sealed))
    return {str(k): str(v) for k, v in values.items()}


def seal_generated(settings: Settings, sealed: bytes | None, compose_text: str | None) -> bytes | None:
    """The deployment's generated passwords with a new one for each key the compose file names and the
    deployment does not have yet (existing ones are kept), encrypted; None when there are none."""
    values = open_generated(settings, sealed)
    for key in generated_keys(compose_text):
        values.setdefault(key, _secrets.token_urlsafe(18))
    return Cipher(settings).encrypt(json.dumps(values, sort_keys=True)) if values else None


@dataclass(frozen=True)
class EnvValue:
    key: str
    value: str
    secret: bool
    build: bool


async def deployment_env(session: AsyncSession, settings: Settings, deployment_id: int) -> list[EnvValue]:
    """A deployment's variables, decrypted (for the runner, and for redaction)."""
    from shared.db.models import EnvVar  # late: shared.db.models is heavier than what redact() needs

    rows = (
        await session.scalars(select(EnvVar).where(EnvVar.deployment_id == deployment_id).order_by(EnvVar.key))
    ).all()
    if not rows:
        return []
    cipher = Cipher(settings)
    return [EnvValue(r.key, cipher.decrypt(r.value_encrypted), r.secret, r.build) for r in rows]


async def secret_values(session: AsyncSession, settings: Settings, deployment_id: int) -> list[str]:
    """What must never appear in text about this deployment: its secret variables' values and the passwords
    Portside generated for it."""
    from shared.db.models import Deployment

    sealed = await session.scalar(select(Deployment.generated_secrets).where(Deployment.id == deployment_id))
    return [v.value for v in await deployment_env(session, settings, deployment_id) if v.secret] + list(
        open_generated(settings, sealed).values())

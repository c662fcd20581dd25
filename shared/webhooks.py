"""What the API (registering webhooks) and logstream (delivering them) agree on: which events a webhook may
ask for, the URL rule, the body and its signature. Receivers verify `X-Portside-Signature: sha256=<hex>`, the
HMAC-SHA256 of the raw body with the webhook's secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.messaging.subjects import PublicSubject
from shared.outbound import Target, check_url

SIGNATURE_HEADER = "X-Portside-Signature"
TIMESTAMP_HEADER = "X-Portside-Timestamp"
EVENT_HEADER = "X-Portside-Event"
EVERY_EVENT = "*"
EVENT_NAMES = frozenset(subject.short for subject in PublicSubject)


def check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - EVENT_NAMES - {EVERY_EVENT})
    if unknown:
        raise PortsideError(ErrorCode.VALIDATION_ERROR, f"Unknown event(s) {', '.join(unknown)}; use `*` or some of "
                            f"{', '.join(sorted(EVENT_NAMES))}.")
    return sorted(set(events))


def check_webhook_target(url: str, settings: Settings) -> Target:
    """The URL as Portside will call it and the addresses its host resolved to; refused like a git URL would be
    (no loopback or private hosts unless PORTSIDE_ALLOW_PRIVATE_NETWORKS). Called when the webhook is saved and
    again before every delivery, which then connects to exactly these addresses."""
    try:
        return check_url(url, schemes=("https", "http"), allow_private=settings.allow_private_networks,
                         what="webhook URL")
    except PortsideError as exc:
        raise PortsideError(ErrorCode.WEBHOOK_URL_FORBIDDEN, exc.message) from exc


def check_webhook_url(url: str, settings: Settings) -> str:
    """The checked URL, as stored (see check_webhook_target)."""
    return check_webhook_target(url, settings).url


def wants(events: list[str], subject: str) -> bool:
    short = PublicSubject(subject).short
    return EVERY_EVENT in events or short in events


def body_of(subject: str, payload: dict[str, Any]) -> str:
    """One JSON object, the same shape `portside events --json` prints: subject, deployment_id, payload."""
    return json.dumps({"subject": subject, "event": PublicSubject(subject).short,
                       "deployment_id": payload.get("deployment_id"), "payload": payload}, sort_keys=True)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

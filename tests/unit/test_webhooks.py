"""Webhook pieces that need no network: the retry schedule, the signature, which events a webhook takes,
and the URL rule (loopback refused unless private networks are allowed)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.logstream.webhooks import backoff
from shared.config import Settings
from shared.errors import ErrorCode, PortsideError
from shared.webhooks import body_of, check_events, check_webhook_url, sign, wants


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    settings = Settings(webhook_retry_base_seconds=2)
    assert [backoff(settings, n) for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert backoff(settings, 30) == 3600


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = body_of("portside.events.v1.deployment.crashed", {"deployment_id": 4, "exit_code": 137}).encode()
    assert sign("s3cret", body) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("other", body) != sign("s3cret", body)


def test_a_webhook_takes_the_events_it_names_or_every_one() -> None:
    assert wants(["deployment.crashed"], "portside.events.v1.deployment.crashed")
    assert not wants(["deployment.crashed"], "portside.events.v1.build.started")
    assert wants(["*"], "portside.events.v1.port.freed")
    assert check_events(["build.finished", "build.finished", "*"]) == ["*", "build.finished"]
    with pytest.raises(PortsideError) as info:
        check_events(["deployment.exploded"])
    assert info.value.code == ErrorCode.VALIDATION_ERROR and "deployment.crashed" in info.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://[::1]/x", "http://10.0.0.8/", "ftp://1.1.1.1/",
                                 "http://169.254.169.254/latest/meta-data"])
def test_webhook_urls_obey_the_outbound_rule(url: str) -> None:
    with pytest.raises(PortsideError) as info:
        check_webhook_url(url, Settings())
    assert info.value.code == ErrorCode.WEBHOOK_URL_FORBIDDEN


def test_loopback_is_allowed_only_with_private_networks() -> None:
    assert check_webhook_url("http://127.0.0.1:9/hook", Settings(allow_private_networks=True)) == \
        "http://127.0.0.1:9/hook"

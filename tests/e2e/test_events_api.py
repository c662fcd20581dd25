"""The public events through a whole running Portside, as a user meets them: a deploy's every status change is
one event for `portside events --json`, a webhook receives them signed and can have one sent again, a receiver
that hangs does not hold up the deploy, a container killed under a running app is `deployment.crashed`, and a
delete is `deployment.deleted`."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import copy_fixture
from tests.receivers import Receivers
from tests.support import ROOT, StartupFailed, System, running_system

SECRET = "e2e-webhook-secret-0123"
pytestmark = pytest.mark.slow  # a real build and start, about a minute


@pytest.fixture(scope="module")
def hooked(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # Receivers run on loopback, which webhook URLs may reach only when private networks are allowed. One
    # process: the same services and consumers, and it comes up in time on a loaded machine.
    env = {"PORTSIDE_ALLOW_PRIVATE_NETWORKS": "true", "PORTSIDE_WEBHOOK_TIMEOUT_SECONDS": "900"}
    try:
        with running_system(tmp_path_factory.mktemp("events-home"), engine, env, ["--single-process"]) as running:
            yield running
    except StartupFailed as exc:
        pytest.fail(str(exc))


def cli_events(system: System, *args: str) -> list[dict]:
    env = {**os.environ, "PORTSIDE_API_URL": system.url, "PORTSIDE_TOKEN": system.token}
    done = subprocess.run([sys.executable, "-m", "services.cli.main", "events", "--json", *args], env=env, check=False,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def changes_in_timeline(system: System, deployment_id: int) -> list[str]:
    """The statuses the timeline moved through (an entry repeating the status is a note, not a change)."""
    statuses: list[str] = []
    for entry in sorted(system.events(deployment_id), key=lambda e: e["id"]):
        if not statuses or statuses[-1] != entry["status"]:
            statuses.append(entry["status"])
    return statuses


def test_a_deploy_seen_through_portside_events_and_webhooks(
    hooked: System, engine: docker.DockerClient, tmp_path: Path
) -> None:
    with Receivers() as receivers:
        slow, fast = receivers.new(hold_seconds=900), receivers.new()
        slow.hold.clear()  # answers nothing until the end of the test
        for receiver, events in ((slow, ["*"]), (fast, ["deployment.status_changed", "deployment.crashed"])):
            made = hooked.call("POST", "/api/webhooks", json={"url": receiver.url, "events": events, "secret": SECRET})
            receiver.webhook_id = made["data"]["id"]
            assert "secret" not in made["data"]

        deployment_id = hooked.deploy_path(copy_fixture("python-flask", tmp_path))["deployment_id"]
        outcome = hooked.deploy(deployment_id)
        assert outcome["status"] == "running", outcome
        # The deploy finished while the slow receiver had not answered a single delivery.
        assert slow.seen and not slow.answered

        statuses = changes_in_timeline(hooked, deployment_id)
        assert statuses == ["generating", "ready", "queued", "building", "starting", "running"]
        # The outbox relay publishes after the commit, on its own: the last change may reach the stream after the
        # deploy's answer did.
        deadline = time.monotonic() + 60
        while True:
            seen = cli_events(hooked, "--deployment", str(deployment_id))
            changes = [e["payload"]["status"] for e in seen if e["subject"].endswith(".deployment.status_changed")]
            if changes[-1:] == ["running"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert changes == statuses  # exactly one public event per status change
        assert all(e["deployment_id"] == deployment_id for e in seen)
        kinds = [e["subject"].removeprefix("portside.events.v1.") for e in seen]
        assert kinds.count("build.started") == kinds.count("build.finished") == kinds.count("port.assigned") == 1
        [finished] = [e["payload"] for e in seen if e["subject"].endswith("build.finished")]
        assert finished["succeeded"] and finished["duration_seconds"] > 0

        deadline = time.monotonic() + 60
        while len(fast.seen) < len(statuses) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [json.loads(body)["payload"]["status"] for _, _, body in fast.seen][-len(statuses):] == statuses
        for _, headers, body in fast.seen:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Portside-Signature"] == expected and headers["X-Portside-Timestamp"].isdigit()

        # The delivery log, and a delivery sent again: the same body, signed again.
        log = hooked.call("GET", f"/api/webhooks/{fast.webhook_id}/deliveries")["data"]
        assert {d["status"] for d in log} == {"delivered"} and len(log) >= len(statuses)
        before = len(fast.seen)
        hooked.call("POST", f"/api/webhooks/{fast.webhook_id}/deliveries/{log[0]['id']}/redeliver")
        deadline = time.monotonic() + 30
        while len(fast.seen) == before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(fast.seen) == before + 1
        missing = hooked.call("POST", f"/api/webhooks/{fast.webhook_id}/deliveries/999999/redeliver",
                              expect=404)
        assert missing["error_code"] == "DELIVERY_NOT_FOUND"

        # A container killed under a running app: the watcher's crash, with its exit code, for both subscribers.
        [app] = [c for c in hooked.containers(engine, deployment_id) if c.labels.get("com.docker.compose.service")
                 == "app"]
        app.kill()
        assert hooked.wait_status(deployment_id, {"crashed"}, timeout=60)["status"] == "crashed"
        deadline = time.monotonic() + 30
        crashes: list[dict] = []
        while not crashes and time.monotonic() < deadline:
            crashes = [e for e in cli_events(hooked, "--deployment", str(deployment_id))
                       if e["subject"].endswith("deployment.crashed")]
            time.sleep(0.3)
        assert len(crashes) == 1 and crashes[0]["payload"]["exit_code"] == 137

        # Deleted: the last event about it, which `portside events` still shows once the row is gone.
        hooked.call("DELETE", f"/api/deployments/{deployment_id}")
        deadline = time.monotonic() + 30
        deleted: list[dict] = []
        while not deleted and time.monotonic() < deadline:
            deleted = [e for e in cli_events(hooked, "--limit", "1000") if e["deployment_id"] == deployment_id
                       and e["subject"].endswith("deployment.deleted")]
            time.sleep(0.3)
        assert len(deleted) == 1 and deleted[0]["payload"]["purged"] is False
        slow.hold.set()

    assert hooked.call("GET", "/api/asyncapi.json")["asyncapi"].startswith("3.")

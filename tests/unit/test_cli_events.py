"""`portside events` without --json: one readable line per event."""

from __future__ import annotations

from services.cli.main import _event_text


def test_event_lines_say_what_happened_to_what() -> None:
    crashed = {"subject": "portside.events.v1.deployment.crashed", "deployment_id": 7,
               "payload": {"deployment_id": 7, "exit_code": 137, "occurred_at": "2026-11-29T07:00:01.5Z"}}
    assert _event_text(crashed) == "2026-11-29T07:00:01  deployment.crashed         deployment 7     exit code 137"
    changed = {"subject": "portside.events.v1.deployment.status_changed", "deployment_id": 7,
               "payload": {"deployment_id": 7, "previous_status": "building", "status": "build_failed",
                           "error_code": "BUILD_FAILED", "occurred_at": "2026-11-29T07:00:02Z"}}
    assert _event_text(changed).endswith("building -> build_failed (BUILD_FAILED)")
    registered = {"subject": "portside.events.v1.repository.registered", "deployment_id": None,
                  "payload": {"repository_id": 3, "name": "demo", "url": None, "occurred_at": "2026-11-29T07:00:03Z"}}
    assert "repository 3" in _event_text(registered) and _event_text(registered).endswith("demo")
    deleted = {"subject": "portside.events.v1.deployment.deleted", "deployment_id": 7,
               "payload": {"deployment_id": 7, "repository_id": 3, "repo_name": "demo", "owner_id": 2,
                           "purged": True, "occurred_at": "2026-11-29T07:00:04Z"}}
    assert _event_text(deleted).endswith("deployment.deleted         deployment 7     demo (volumes purged)")

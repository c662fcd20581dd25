from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.db.status import TRANSITIONS, DeploymentStatus
from shared.messaging.contract import SUBJECT_PAYLOADS
from shared.messaging.events import BuildFailed, BuildRequested
from shared.messaging.subjects import PublicSubject, Subject


def test_every_subject_has_a_payload_named_after_it() -> None:
    assert set(SUBJECT_PAYLOADS) == set(Subject) | set(PublicSubject)
    for subject in Subject:
        model = SUBJECT_PAYLOADS[subject]
        _, stage, event = subject.value.split(".")
        assert model.__name__ == stage.capitalize() + event.capitalize()


def test_subjects_follow_the_grammar() -> None:
    for subject in Subject:
        prefix, _, event = subject.value.split(".")
        assert prefix == "deploy"
        assert event in ("requested", "completed", "failed")


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = BuildRequested(deployment_id=1)
    with pytest.raises(ValidationError):
        event.deployment_id = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        BuildRequested(deployment_id=1, extra=True)  # type: ignore[call-arg]
    assert event.schema_version == 1 and len(event.correlation_id) == 32


def test_events_round_trip_through_json() -> None:
    event = BuildFailed(deployment_id=3, error_code="BUILD_FAILED", message="step 2 failed")
    assert BuildFailed.model_validate_json(event.model_dump_json()) == event


def test_state_machine_sources_for_key_transitions() -> None:
    S = DeploymentStatus
    assert S.STOPPED not in TRANSITIONS[S.RUNNING]  # running only after starting
    assert S.STOPPED in TRANSITIONS[S.QUEUED]  # a stopped deployment can be deployed again
    assert S.RUNNING in TRANSITIONS[S.STOPPING]
    # A build is entered only from the queue, or re-entered by a redelivered job.
    assert TRANSITIONS[S.BUILDING] == {S.QUEUED, S.BUILDING}
    assert S.STOPPED not in TRANSITIONS[S.ERROR]


def test_public_subjects_are_versioned_past_tense_facts() -> None:
    for subject in PublicSubject:
        prefix, entity, event = subject.value.rsplit(".", 2)
        assert prefix == "portside.events.v1" and subject.short == f"{entity}.{event}"
        assert event.endswith(("ed", "changed"))

from __future__ import annotations

import json
from pathlib import Path

from services.asyncapi import DOC, render
from shared.messaging.contract import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_asyncapi_matches_the_apps() -> None:
    # Regenerate with `make docs` after changing a subject, a payload or a subscriber.
    assert DOC.read_text() == render()
    assert (ROOT / "docs" / "asyncapi.json").read_text() == DOC.read_text()  # docs/ links to the shipped copy


def test_asyncapi_names_every_subject_with_its_payload() -> None:
    doc = json.loads(DOC.read_text())
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert {route.subject.value for route in ROUTES} <= addresses
    schemas = doc["components"]["schemas"]
    assert {route.payload.__name__ for route in ROUTES} <= set(schemas)

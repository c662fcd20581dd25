"""Every folder in tests/fixtures/repos is a test: its detection must match its expected.json.

expected.json lists only the fields that matter for that repo. Two extra keys are understood:
`app_path` (detect a subdirectory), `min_confidence` / `max_confidence` (calibration bounds), `apps` (fields of
monorepo apps by path), `warnings_contain` and `alternatives_nonempty`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.detector.service import detect

REPOS = Path(__file__).resolve().parents[2] / "fixtures" / "repos"
FIXTURES = sorted(p.name for p in REPOS.iterdir() if (p / "expected.json").is_file())
_SPECIAL = {"app_path", "min_confidence", "max_confidence", "apps", "warnings_contain", "alternatives_nonempty"}


def _actual(det: object, key: str) -> object:
    return getattr(det, key)


@pytest.mark.unit
@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_detection_matches_expected(name: str) -> None:
    expected = json.loads((REPOS / name / "expected.json").read_text())
    det = detect(REPOS / name, expected.get("app_path", ""))
    mismatches = {
        key: {"expected": want, "actual": _actual(det, key)}
        for key, want in expected.items()
        if key not in _SPECIAL and _actual(det, key) != want
    }
    if "min_confidence" in expected and det.confidence < expected["min_confidence"]:
        mismatches["confidence"] = {"expected": f">= {expected['min_confidence']}", "actual": det.confidence}
    if "max_confidence" in expected and det.confidence > expected["max_confidence"]:
        mismatches["confidence"] = {"expected": f"<= {expected['max_confidence']}", "actual": det.confidence}
    if "apps" in expected:
        got = {a.app_path: a for a in det.apps}
        for path, fields in expected["apps"].items():
            if path not in got:
                mismatches[f"apps[{path}]"] = {"expected": "present", "actual": sorted(got)}
                continue
            for key, want in fields.items():
                if getattr(got[path], key) != want:
                    mismatches[f"apps[{path}].{key}"] = {"expected": want, "actual": getattr(got[path], key)}
    if expected.get("alternatives_nonempty") and not det.alternatives:
        mismatches["alternatives"] = {"expected": "at least one", "actual": det.alternatives}
    for fragment in expected.get("warnings_contain", []):
        if not any(fragment in w for w in det.warnings):
            mismatches["warnings"] = {"expected": f"a warning containing {fragment!r}", "actual": det.warnings}
    assert not mismatches, json.dumps(mismatches, indent=2) + "\nevidence:\n" + "\n".join(
        f"  {e.file}: {e.reason} ({e.weight})" for e in det.evidence)


@pytest.mark.unit
def test_fixture_set_is_large_enough() -> None:
    assert len(FIXTURES) >= 5

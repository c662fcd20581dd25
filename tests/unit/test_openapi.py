from __future__ import annotations

from services.api.openapi import DOC, render


def test_checked_in_openapi_matches_the_api() -> None:
    # Regenerate with `make docs` after changing a route or a schema.
    assert DOC.read_text() == render()

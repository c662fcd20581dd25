"""Write the API's OpenAPI document to docs/openapi.json (`make docs`); a unit test keeps it current."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def render() -> str:
    from services.api.main import create_app

    # Building the app connects to nothing; these URLs are never dialled.
    app = create_app(Settings(database_url="postgresql://docs@localhost/docs", nats_url="nats://127.0.0.1:1"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render())
    print(f"wrote {DOC}", file=sys.stderr)

"""The API as `make bench` runs it for bench/auth_bench.py: as shipped, or (`--no-auth`) with the caller fixed
to an in-memory admin, so the two differ only by the authentication work."""

from __future__ import annotations

import sys

import uvicorn

from services.api.deps import get_current_user
from services.api.main import create_app
from shared.config import get_settings
from shared.db.models import User

if __name__ == "__main__":
    settings = get_settings()
    app = create_app(settings)
    if "--no-auth" in sys.argv:
        admin = User(id=1, email="bench@portside.test", password_hash="", role="admin", disabled=False)
        app.dependency_overrides[get_current_user] = lambda: admin
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

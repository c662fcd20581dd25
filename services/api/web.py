"""The web page: the API serves services/web/dist (built by `make install`) at `/`, with an SPA fallback
(any other page path answers index.html) that never shadows /api, /docs, /redoc or /openapi.json."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

NOT_BUILT = """<!doctype html><title>Portside</title><p>The web page is not built: run <code>make install</code>
(it runs <code>npm ci</code> and the Vite build in services/web). The API is at <a href="/docs">/docs</a>.</p>"""


class PagePath(Convertor[str]):
    """Any path except the API's own: a request there keeps the API's 404 / 405 answers."""

    regex = r"(?!(?:api|docs|redoc|openapi\.json)(?:/|$)).*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("page", PagePath())


def install_web(app: FastAPI, dist: Path = WEB_DIST) -> None:
    root = dist.resolve()

    async def page(request: Request) -> Response:
        path: str = request.path_params["path"]
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        if path:
            file = (root / path).resolve()
            if file.is_file() and file.is_relative_to(root):
                # Vite names every asset by its content hash, so it never changes under the same name.
                immutable = file.parent == root / "assets"
                return FileResponse(file, headers={"Cache-Control": "public, max-age=31536000, immutable" if immutable else "no-cache"})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    # A plain Starlette route (not an API route): no OpenAPI entry, no auth, nothing but files.
    app.router.add_route("/{path:page}", page, methods=["GET", "HEAD"], include_in_schema=False)

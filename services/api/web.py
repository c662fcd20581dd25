"""The web page: the API serves services/web/dist (built by `make install`) at `/`, with an SPA fallback
(any other page path answers index.html) that never shadows /api, /docs, /redoc or /openapi.json."""

from __future__ import annotations

import mimetypes
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


def _send(request: Request, file: Path, cache: str) -> Response:
    """The file, or its gzip copy made at build time (scripts/compress.mjs) when the browser accepts gzip."""
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    gz = file.with_name(file.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and gz.is_file():
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return FileResponse(gz, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return FileResponse(file, headers=headers)


def install_web(app: FastAPI, dist: Path = WEB_DIST) -> None:
    root = dist.resolve()

    async def page(request: Request) -> Response:
        path: str = request.path_params["path"]
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        file = index
        if path:
            found = (root / path).resolve()
            if found.is_file() and found.is_relative_to(root):
                file = found
        # Vite names every asset by its content hash, so it never changes under the same name.
        cache = "public, max-age=31536000, immutable" if file.parent == root / "assets" else "no-cache"
        return _send(request, file, cache)

    # A plain Starlette route (not an API route): no OpenAPI entry, no auth, nothing but files.
    app.router.add_route("/{path:page}", page, methods=["GET", "HEAD"], include_in_schema=False)

"""Serves the web console's build (console/dist) at ``/``.

An ASGI middleware placed before authentication: the console's files are public (the page signs in through
the API), and everything under the API's prefixes passes through untouched, so the console never shadows
a route. Hashed assets (``/assets/…``) are cached for a year; ``index.html`` is revalidated on every load,
and answers every client route (``/use-cases/x``). Without a build, ``/`` says how to make one.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

# Paths that belong to the server, never to the console (exact, or as a folder prefix).
SERVER_PATHS = ("/api", "/metrics", "/health", "/ready", "/docs", "/redoc", "/openapi.json")
IMMUTABLE = "public, max-age=31536000, immutable"
# The console loads only its own scripts and styles and talks only to this origin.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Adaptive Engine: console not built</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:4rem auto;padding:0 1rem}}
code{{background:#8882;padding:.1em .3em;border-radius:4px}}</style></head>
<body><h1>The web console is not built</h1>
<p>The API works (<code>/api/graphql</code>, <code>/api/v1</code>); the console's files were not found in
<code>{folder}</code>.</p>
<p>Build it with <code>make serve</code> (it runs <code>npm ci</code> and <code>npm run build</code> in
<code>console/</code>; it needs Node.js 20.19 or newer and npm), or point <code>ADAPTIVE_CONSOLE_DIR</code>
at a folder holding a build.</p></body></html>
"""


def default_console_dir() -> Path:
    """The repository's console/dist (an editable install runs from the repository)."""
    return Path(__file__).resolve().parents[3] / "console" / "dist"


def is_server_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in SERVER_PATHS)


class ConsoleMiddleware:
    def __init__(self, app: ASGIApp, folder: Path | None) -> None:
        self.app = app
        self.folder = (folder or default_console_dir()).resolve()
        # check_dir=False: the build may appear after the server started (a `make` run beside it).
        self.files = StaticFiles(directory=self.folder, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or is_server_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        response = await self._response(scope)
        await response(scope, receive, send)

    async def _response(self, scope: Scope) -> Response:
        if not (self.folder / "index.html").is_file():
            return HTMLResponse(
                NOT_BUILT.format(folder=self.folder), status_code=503, headers={"cache-control": "no-store"}
            )
        path = scope["path"]
        if path.startswith("/assets/"):
            response = await self._file(path, scope)
            if response is None:  # an asset of an older build: a plain 404, never the page
                return Response("not found", status_code=404, media_type="text/plain")
            response.headers["cache-control"] = IMMUTABLE
            return response
        # A file at the top of the build (favicon), else the page itself for every client route.
        response = (await self._file(path, scope) if path != "/" else None) or await self._file("/index.html", scope)
        assert response is not None
        response.headers["cache-control"] = "no-cache"
        response.headers.update(SECURITY_HEADERS)
        return response

    async def _file(self, path: str, scope: Scope) -> Response | None:
        try:
            response = await self.files.get_response(path.lstrip("/"), scope)
        except HTTPException:
            return None
        return response if response.status_code < 400 else None

"""The intranet search page: `/` and its static files (`/static/...`), no build step, no CDN.

The page is one HTML file plus a script and a stylesheet; everything it shows comes from the
JSON API. `/` answers the same HTML for every query string (`/?q=…&lang=…`, `/?doc=…`): the
script reads the URL and renders that view, so shared links and the back button work.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

# Defence in depth behind the script's text-only rendering: no inline script, no foreign
# origins, no plugins, and the page cannot be framed by another site.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # The page is tiny and changes with deployments: always revalidate.
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


class _PageAssets(StaticFiles):
    """The page's script and stylesheet, with the page's headers (a deployment must not leave
    browsers running yesterday's script against today's API)."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_PAGE_HEADERS)
        return response


@router.get("/")
async def search_page() -> FileResponse:
    """The search page; the query string (`q`, `lang`, `doc`, …) is read by the script."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers=_PAGE_HEADERS)


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    """The page's icon (a bridge), for browsers that ask for /favicon.ico whatever the page
    says."""
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})


def mount_page(app: FastAPI) -> None:
    """Serve the page at `/` and its script and stylesheet under `/static/`."""
    app.include_router(router)
    app.mount("/static", _PageAssets(directory=STATIC_DIR), name="static")

"""`/console`: the page and its assets, served from the package (no build step, no CDN).

The console is a client of the public API like any other: it holds no privilege, and the page
and assets need no key (they contain none). Every response forbids framing, sniffing and
third-party sources, so even hostile text shown in a timeline cannot load or send anything
anywhere but this server.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from app.errors import NotFound

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Inline scripts and styles are not allowed either: the page's own files only.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    # Revalidated each time (ETag): an upgraded server never runs yesterday's script.
    "cache-control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _assets() -> dict[str, Path]:
    return {path.name: path for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES}


ASSETS = _assets()


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/console")
async def console_page() -> FileResponse:
    """The web console (a single page; its routes live after `#`)."""
    return _file(STATIC / "index.html")


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    """`/console/` is `/console` (the page loads its assets by absolute path)."""
    return RedirectResponse("/console", status_code=308)


@router.get("/console/assets/{name}")
async def console_asset(name: str) -> FileResponse:
    """A script, stylesheet or image of the console."""
    path = ASSETS.get(name)
    if path is None or path.suffix == ".html":
        raise NotFound(f"The console has no asset {name!r}")
    return _file(path)

"""The inspector's page: `/app` (one HTML page, plain JavaScript and CSS from the package, nothing from a CDN),
its words in both languages, and the CJK font the page and the inspection record share."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from hazardvision.service.i18n import LABELS

router = APIRouter(include_in_schema=False)

WEB = Path(str(files("hazardvision.service") / "web"))
FONTS = Path(str(files("hazardvision") / "fonts"))
_STRINGS = {key: {"en": english, "zh": chinese} for key, (english, chinese) in LABELS.items()}
# The page's files change with the package: the browser revalidates them on every load.
_CACHE = {"Cache-Control": "no-cache"}


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/app", status_code=307)


@router.get("/app")
async def page() -> FileResponse:
    return FileResponse(WEB / "page.html", media_type="text/html", headers={
        **_CACHE, "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


@router.get("/app/strings.json")
async def strings() -> JSONResponse:
    return JSONResponse(_STRINGS, headers=_CACHE)


def install(app: FastAPI) -> None:
    """Serve the page, its assets and the font."""
    app.include_router(router)
    app.mount("/app/assets", StaticFiles(directory=WEB), name="page-assets")
    app.mount("/app/fonts", StaticFiles(directory=FONTS), name="page-fonts")

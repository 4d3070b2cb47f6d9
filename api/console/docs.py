"""`/docs` (Swagger UI) and `/redoc` with assets that ship with the gateway: no CDN.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, so `/docs` is blank where the browser
cannot reach it. The assets come from the `fastapi-offline` wheel (1.7.x vendors swagger-ui-dist 5
and redoc 2 standalone bundles under `fastapi_offline/static/`); we use only its files, through
FastAPI's own page builders. The app must be created with `docs_url=None, redoc_url=None` so these
routes are the ones answering.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

ASSETS_PREFIX = "/docs-assets"
# name -> media type; nothing else under the package is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
_cache: dict[str, bytes] = {}


def _asset(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = (resources.files("fastapi_offline") / "static" / name).read_bytes()
    return _cache[name]


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - API",
            swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
        )

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - API",
            redoc_js_url=f"{ASSETS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(ASSETS_PREFIX + "/{name}")
    async def asset(name: Annotated[str, Path(max_length=64)]) -> Response:
        media_type = ASSETS.get(name)
        if media_type is None:
            return Response(status_code=404)
        return Response(
            _asset(name),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    return router

"""`/docs` (Swagger UI) and `/redoc` with assets that ship with the gateway: no CDN.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, so `/docs` is blank where the browser
cannot reach it. The assets come from the `fastapi-offline` wheel (1.7.x vendors swagger-ui-dist 5
and redoc 2 standalone bundles under `fastapi_offline/static/`); we use only its files, through
FastAPI's own page builders. The app must be created with `docs_url=None, redoc_url=None` so these
routes are the ones answering.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
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
# Nothing but this gateway: the bundles' own defaults would fetch a validator badge (Swagger UI) and
# a logo (ReDoc's footer) from the Internet. Swagger UI's page starts itself with an inline script;
# ReDoc's styled components need inline styles and its search runs in a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
</head>
<body style="margin: 0">
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def _asset(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = (resources.files("fastapi_offline") / "static" / name).read_bytes()
    return _cache[name]


def docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=request.app.openapi_url or "/openapi.json",
            title=f"{request.app.title} - API",
            swagger_js_url=f"{ASSETS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        # Our own page rather than FastAPI's: a <redoc> element the bundle starts by itself, and no
        # Google Fonts link.
        page = REDOC_PAGE.format(
            title=html.escape(f"{request.app.title} - API"),
            assets=ASSETS_PREFIX,
            openapi_url=html.escape(request.app.openapi_url or "/openapi.json"),
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})

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

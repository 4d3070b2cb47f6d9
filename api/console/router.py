"""`console_router()`: the Gennaker console at /console/ (sign-in, static assets, and the pages).

Include it in the app without the API's bearer dependency: console routes authenticate from their
own cookie (api/console/session.py) with the API's authentication and policy.
"""

from __future__ import annotations

import secrets
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.console import session
from api.console.clusters import clusters_router
from api.console.pages import pages_router
from api.console.services import auth_disabled, identify
from api.console.web import SECURITY_HEADERS, Caller, ConsoleRoute, caller, checked_form, redirect, render
from api.errors import ApiError

STATIC = FilePath(__file__).parent / "static"
# name -> media type; only these files are served.
STATIC_FILES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


def console_router() -> APIRouter:
    router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

    @router.get("")
    async def console_root() -> Response:
        return redirect("/console/")

    @router.get("/static/{name}")
    async def static(name: Annotated[str, Path(max_length=64)]) -> Response:
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return Response(status_code=404)
        return Response(
            (STATIC / name).read_bytes(),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/login")
    async def login_page(
        request: Request, next: Annotated[str | None, Query(max_length=2048)] = None, error: str | None = None
    ) -> Response:
        if auth_disabled(request):
            return redirect(session.safe_next(next))
        nonce = secrets.token_urlsafe(24)
        context = {"next": session.safe_next(next), "nonce": nonce, "error": (error or "")[:200]}
        response = render(request, None, "login.html", context)
        session.set_cookie(request, response, session.LOGIN_COOKIE, nonce, max_age=3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        session.check_origin(request)
        nonce, token, target = (form.get(k) for k in ("nonce", "token", "next"))
        expected = request.cookies.get(session.LOGIN_COOKIE)
        if not isinstance(nonce, str) or not expected or not secrets.compare_digest(nonce, expected):
            raise ApiError(403, "csrf", "the sign-in form expired or came from another site: reload it", "nonce")
        target = session.safe_next(target if isinstance(target, str) else None)
        token = token.strip() if isinstance(token, str) else ""
        if not token or len(token) > session.MAX_CREDENTIAL:
            return _login_failed(request, target, "enter an API token")
        try:
            await identify(request, token)
        except ApiError as exc:
            if exc.status != 401:
                raise
            return _login_failed(request, target, exc.message)
        response = redirect(target)
        session.set_cookie(request, response, session.COOKIE, token)
        session.clear_cookie(request, response, session.LOGIN_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request, who: Annotated[Caller, Depends(caller)]) -> Response:
        await checked_form(request, who)
        response = redirect("/console/login")
        session.clear_cookie(request, response, session.COOKIE)
        return response

    router.include_router(pages_router())
    router.include_router(clusters_router())
    return router


def _login_failed(request: Request, target: str, message: str) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, None, "login.html", {"next": target, "nonce": nonce, "error": message}, status=401)
    session.set_cookie(request, response, session.LOGIN_COOKIE, nonce, max_age=3600)
    response.headers.update(SECURITY_HEADERS)
    return response

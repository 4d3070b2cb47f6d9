"""Rendering for the console: templates (autoescaped), the signed-in caller, and HTML error pages.

Every string that comes from a pipeline, an execution or a cluster is treated as hostile: Jinja2
escapes all of it (autoescape on for every template, SVG included), values inside URLs are
percent-encoded as one path segment (`pathseg`), and a strict Content-Security-Policy allows only
this gateway's own scripts and styles, so even a missed escape could not run inline script.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.console import session
from api.console.services import Gateway, auth_disabled, identify
from api.errors import UPDATE_REJECTION_STATUS, ApiError
from workflows.model import PipelineInvalid

log = logging.getLogger("gennaker.console")

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _pathseg(value: object) -> str:
    return quote(str(value), safe="")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(pathseg=_pathseg, when=_when, pretty=_pretty)
templates.globals.update(duration=_duration)


@dataclass
class Caller:
    """The signed-in browser: the gateway seen with its access, and its session cookie."""

    gateway: Gateway
    cookie: str
    fresh_cookie: bool = False  # an anonymous nonce made for this request, to be set on the response

    @property
    def csrf(self) -> str:
        return session.csrf_token(self.cookie)


class NotSignedIn(Exception):
    pass


async def caller(request: Request) -> Caller:
    """Dependency: the console's caller, from its cookie, authenticated as the API authenticates."""
    cookie = request.cookies.get(session.COOKIE)
    if auth_disabled(request):
        fresh = cookie is None or not cookie.startswith(session.ANONYMOUS_PREFIX)
        cookie = session.new_anonymous_session() if fresh or cookie is None else cookie
        return Caller(Gateway(request, await identify(request, None)), cookie, fresh_cookie=fresh)
    if not cookie or len(cookie) > session.MAX_CREDENTIAL or cookie.startswith(session.ANONYMOUS_PREFIX):
        raise NotSignedIn
    try:
        identity = await identify(request, cookie)
    except ApiError as exc:
        if exc.status == 401:
            raise NotSignedIn from None
        raise
    return Caller(Gateway(request, identity), cookie)


async def checked_form(request: Request, who: Caller) -> dict[str, str]:
    """The posted form, after its CSRF token (and Origin) are checked; only string fields."""
    form = await request.form()
    session.check_csrf(request, who.cookie, _text(form.get(session.CSRF_FIELD)))
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def render(
    request: Request, who: Caller | None, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    page = templates.get_template(template).render(
        request_path=request.url.path,
        who=who,
        subject=who.gateway.subject if who else None,
        auth_disabled=auth_disabled(request),
        csrf_field=session.CSRF_FIELD,
        **context,
    )
    response = HTMLResponse(page, status_code=status, headers=SECURITY_HEADERS)
    if who is not None and who.fresh_cookie:
        session.set_cookie(request, response, session.COOKIE, who.cookie)
    return response


def redirect(url: str) -> RedirectResponse:
    """303: after a POST the browser GETs the result, so reloading does not post twice."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def _error_page(request: Request, status: int, code: str, message: str) -> HTMLResponse:
    return render(request, None, "error.html", {"status": status, "code": code, "message": message}, status)


def _update_rejection(request: Request, exc: WorkflowUpdateFailedError) -> HTMLResponse:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        status = UPDATE_REJECTION_STATUS.get(cause.type or "", 409)
        return _error_page(request, status, cause.type or "rejected", cause.message)
    return _error_page(request, 409, "rejected", str(cause or exc))


class ConsoleRoute(APIRoute):
    """Turns errors into HTML pages (the API's handlers answer JSON) and sends signed-out browsers
    to the login page; the statuses are the API's own (403 stays 403)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                return _signed_out(request)
            except ApiError as exc:
                return _error_page(request, exc.status, exc.code, exc.message)
            except PipelineInvalid as exc:
                return _error_page(request, 422, "invalid_pipeline", str(exc))
            except RequestValidationError as exc:
                message = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:]) or 'form'}: {e['msg']}" for e in exc.errors()
                )
                return _error_page(request, 422, "invalid_request", message)
            except WorkflowUpdateFailedError as exc:
                return _update_rejection(request, exc)
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return _error_page(request, 404, "not_found", f"not found: {exc.message}")
                if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                    return _error_page(request, 503, "temporal_unavailable", "Temporal is not reachable")
                log.warning("Temporal error: %s (%s)", exc.message, exc.status)
                return _error_page(request, 502, "temporal_error", exc.message)

        return console_handler


def _signed_out(request: Request) -> Response:
    login = "/console/login?next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request"):
        # A polled fragment whose session ended: htmx follows HX-Redirect with a full page load.
        return Response(status_code=401, headers={"HX-Redirect": login, **SECURITY_HEADERS})
    if request.method == "GET":
        return redirect(login)
    return _error_page(request, 401, "unauthorized", "sign in first")

"""Browser sessions for the console: a cookie that holds the caller's API token, and CSRF tokens.

- The cookie holds the token itself (HttpOnly, so page scripts cannot read it; SameSite=Strict, so
  other sites' pages do not send it; Secure over https; Path=/console). Every request checks it
  with the API's own authentication, so a revoked token or an expired JWT logs the browser out.
- With authentication disabled (local trials) the cookie holds a random nonce instead: there is no
  identity to protect, but forms still need a CSRF key that other sites cannot know.
- CSRF token = HMAC-SHA256(key = the cookie's value, "gennaker-console-csrf"): bound to the session,
  unguessable without the credential, the same on every gateway replica, and revealing nothing of
  the credential. Every state-changing form posts it back; the Origin header, when a browser sends
  one, must be this gateway's own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response

from api.errors import ApiError

COOKIE = "gennaker_console"
LOGIN_COOKIE = "gennaker_console_login"  # a one-off nonce: login forms cannot be posted from elsewhere
COOKIE_PATH = "/console"
MAX_CREDENTIAL = 8192  # a JWT with many groups is a few KB; anything larger is not a credential
CSRF_FIELD = "csrf"
ANONYMOUS_PREFIX = "anon."


def csrf_token(cookie_value: str) -> str:
    return hmac.new(cookie_value.encode(), b"gennaker-console-csrf", hashlib.sha256).hexdigest()


def new_anonymous_session() -> str:
    return ANONYMOUS_PREFIX + secrets.token_urlsafe(24)


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def check_origin(request: Request) -> None:
    """Browsers send Origin on every cross-site POST; refuse any that is not this gateway."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or an old one: the CSRF token still has to match
        return
    # The host only: a TLS-terminating proxy may hand us http while the browser used https.
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise ApiError(403, "cross_origin", f"requests from origin {origin[:200]!r} are refused")


def check_csrf(request: Request, cookie_value: str | None, submitted: str | None) -> None:
    check_origin(request)
    if not cookie_value or not submitted or not hmac.compare_digest(csrf_token(cookie_value), submitted):
        raise ApiError(403, "csrf", "missing or invalid CSRF token: reload the page and try again", CSRF_FIELD)


def safe_next(target: str | None) -> str:
    """Only a path inside the console may follow a login (no open redirect to another site)."""
    if target and target.startswith(COOKIE_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return COOKIE_PATH + "/"

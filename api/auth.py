"""Authentication (bearer API tokens, optionally OIDC JWTs) and the authorization checks routers use.

Every endpoint needs an identity except /healthz and /readyz (liveness probes carry no token) and the
webhook endpoints, which authenticate each delivery by its secret or signature. Failures: 401 with
`WWW-Authenticate: Bearer` when there is no valid credential, 403 naming what is missing otherwise.

The dependencies here are `async def` so FastAPI runs them on the event loop instead of handing each
to the thread pool (a profile put ~21 % of a submission's gateway CPU in those hops). API tokens are
checked through a short-lived in-memory cache (core/store/tokens.py TokenCache): a revoked token
stops working on every gateway within the cache's TTL (10 s), and a cache miss reads the database on
a thread, never on the loop.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Header, Request

from api.errors import ApiError
from api.policy import Identity, Permission, Policy
from api.settings import GatewaySettings
from core.store.aio import AsyncTokenLookup
from core.store.tokens import TOKEN_PREFIX

JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def unauthorized(message: str) -> ApiError:
    error = ApiError(401, "unauthorized", message)
    error.headers = {"WWW-Authenticate": 'Bearer realm="gennaker"'}
    return error


@lru_cache(maxsize=4)
def _jwks(path: Path, mtime: float) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_json(path.read_text())


def verify_jwt(settings: GatewaySettings, token: str) -> Identity:
    if settings.oidc_jwks_file is None or settings.oidc_issuer is None:
        raise unauthorized("not a Gennaker API token, and OIDC is not configured")
    try:
        keys = _jwks(settings.oidc_jwks_file, settings.oidc_jwks_file.stat().st_mtime)
        kid = jwt.get_unverified_header(token).get("kid")
        candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
        if not candidates:
            raise unauthorized(f"JWT signed with unknown key id {kid!r}")
        claims: dict[str, Any] = jwt.decode(
            token,
            key=candidates[0].key,
            algorithms=JWT_ALGORITHMS,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience,
            options={"require": ["exp", "iss", "sub"], "verify_aud": settings.oidc_audience is not None},
            leeway=30,
        )
    except jwt.PyJWTError as exc:
        raise unauthorized(f"invalid JWT: {exc}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise unauthorized(f"OIDC keys unreadable: {exc}") from None
    subject = str(claims.get(settings.oidc_subject_claim) or claims["sub"])
    raw_groups = claims.get(settings.oidc_groups_claim) or []
    groups = frozenset(str(g) for g in raw_groups) if isinstance(raw_groups, list) else frozenset()
    return Identity(subject=subject, groups=groups, via="oidc")


async def authenticate(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <API token or OIDC JWT>")] = None,
    x_gennaker_user: Annotated[str | None, Header(description="Only with auth disabled (local trials)")] = None,
) -> Identity:
    settings: GatewaySettings = request.app.state.settings
    if settings.auth_disabled:
        name = (x_gennaker_user or "anonymous").strip()[:255] or "anonymous"
        return Identity(subject=name, via="auth-disabled")
    if not authorization:
        raise unauthorized("authentication required: send Authorization: Bearer <token>")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise unauthorized("use Authorization: Bearer <token>")
    credential = credential.strip()
    if credential.startswith(TOKEN_PREFIX):
        tokens: AsyncTokenLookup = request.app.state.tokens
        info = await tokens.lookup(credential)
        if info is None:
            raise unauthorized("unknown or revoked API token")
        return Identity(subject=info.subject, groups=frozenset(info.groups), via="token")
    return verify_jwt(settings, credential)


IdentityDep = Annotated[Identity, Depends(authenticate)]


async def policy_of(request: Request) -> Policy:
    policy: Policy = request.app.state.policy
    return policy


PolicyDep = Annotated[Policy, Depends(policy_of)]


def require(
    identity: Identity, policy: Policy, settings: GatewaySettings, application: str, permission: Permission
) -> None:
    if settings.auth_disabled or policy.allows(identity, application, permission):
        return
    raise ApiError(403, "forbidden", f"{identity.subject} lacks {permission.value} on application {application}")


def require_admin(identity: Identity, policy: Policy, settings: GatewaySettings, what: str) -> None:
    if settings.auth_disabled or policy.is_admin(identity):
        return
    raise ApiError(403, "forbidden", f"{identity.subject} is not an admin ({what} is admin-only)")

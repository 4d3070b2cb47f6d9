"""Authentication and authorization, endpoint by endpoint (closed by default), plus judgment approvers
and OIDC JWTs. Every denial is 401 or 403 with a JSON reason."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.client import Client

from api.app import create_app
from api.settings import GatewaySettings
from core.store import PipelineStore
from core.store.tokens import TokenStore
from tests.support.eventually import assert_eventually
from workers.devserver import TemporalDevServer

ISSUER = "https://login.example.test"
AUDIENCE = "gennaker"
POLICY = """
admins: [root]
applications:
  authz:
    READ: [group:viewers]
    EXECUTE: [group:deployers, group:release-managers]
    WRITE: [group:editors]
"""


@dataclass
class Tokens:
    root: str
    viewer: str
    deployer: str
    editor: str
    releaser: str
    stranger: str
    revoked: str


@pytest.fixture(scope="module")
def oidc_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def settings(
    task_queue: str,
    worker: None,
    temporal_server: TemporalDevServer,
    store: PipelineStore,
    tmp_path_factory: pytest.TempPathFactory,
    oidc_key: Any,
) -> GatewaySettings:
    folder = tmp_path_factory.mktemp("auth")
    policy = folder / "policy.yaml"
    policy.write_text(POLICY)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(oidc_key.public_key()))
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}))
    return GatewaySettings(
        temporal_address=temporal_server.address,
        task_queue=task_queue,
        database_url=store.database_url,
        auth_policy_file=policy,
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_jwks_file=jwks,
    )


@pytest.fixture(scope="module")
def tokens(store: PipelineStore) -> Tokens:
    made = TokenStore(store.database_url)
    try:

        def token(subject: str, *groups: str) -> str:
            return made.create(subject, list(groups), "test")[0]

        revoked = token("gone", "viewers")
        made.revoke(made.list()[-1].id)
        return Tokens(
            root=token("root"),
            viewer=token("vera", "viewers"),
            deployer=token("dan", "deployers"),
            editor=token("eve", "editors"),
            releaser=token("rita", "release-managers"),
            stranger=token("sam", "someone-else"),
            revoked=revoked,
        )
    finally:
        made.close()


@pytest.fixture
async def api(
    settings: GatewaySettings, client: Client, store: PipelineStore, worker: None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=client, store=store)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def waiting_pipeline(name: str, approvers: list[str] | None = None) -> dict[str, Any]:
    stage: dict[str, Any] = {"refId": "gate", "type": "manualJudgment", "judgmentInputs": ["ship"]}
    if approvers:
        stage["approvers"] = approvers
    return {"application": "authz", "name": name, "stages": [stage, {"refId": "w", "type": "wait", "waitTime": 30}]}


async def start(api: httpx.AsyncClient, token: str, pipeline: dict[str, Any]) -> str:
    response = await api.post("/executions", json={"pipeline": pipeline}, headers=bearer(token))
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def until_waiting(api: httpx.AsyncClient, token: str, execution: str) -> None:
    async def state() -> Any:
        return (await api.get(f"/executions/{execution}", headers=bearer(token))).json()

    await assert_eventually(
        state,
        lambda s: any(stage.get("waitingForJudgment") for stage in s["stages"]),
        what=f"{execution} waiting for its judgment",
        timeout=10,
    )


def denial(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text[:300]}"
    error = response.json()["error"]
    assert error["message"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return str(error["message"])


# (method, path template, body, the least role that may call it)
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/schema", None, "any"),
    ("GET", "/accounts", None, "viewer"),  # READ on some application (issue 11 item 9)
    ("GET", "/applications", None, "any"),  # filtered: see test_listings_show_only_readable_applications
    ("GET", "/applications/authz/pipelines", None, "viewer"),
    ("PUT", "/applications/authz/pipelines/{name}", "pipeline", "editor"),
    ("GET", "/applications/authz/pipelines/{name}", None, "viewer"),
    ("GET", "/applications/authz/pipelines/{name}/revisions", None, "viewer"),
    ("POST", "/pipelines/authz/{name}", {}, "deployer"),
    ("DELETE", "/applications/authz/pipelines/{name}", None, "editor"),
    ("POST", "/executions", "execution", "deployer"),
    ("GET", "/executions?application=authz", None, "viewer"),
    ("GET", "/executions/{execution}", None, "viewer"),
    ("PUT", "/executions/{execution}/pause", {}, "deployer"),
    ("PUT", "/executions/{execution}/resume", {}, "deployer"),
    ("POST", "/executions/{execution}/stages/gate/judgment", {"input": "ship"}, "deployer"),
    ("POST", "/executions/{execution}/stages/w/skip", None, "deployer"),
    ("POST", "/executions/{execution}/stages/gate/restart", None, "deployer"),
    ("PUT", "/executions/{execution}/cancel", {"reason": "test"}, "deployer"),
    ("GET", "/applications/authz/clusters?account=none", None, "viewer"),
    ("POST", "/codec/decode", {"payloads": []}, "root"),
    ("POST", "/codec/encode", {"payloads": []}, "root"),
    ("GET", "/webhooks/registry/events", None, "root"),
]
OPEN = {"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/docs-assets/{name}"}
SIGNED = {
    "/webhooks/webhook/{source}",
    "/webhooks/git/github",
    "/webhooks/jenkins/{master}",
    "/webhooks/registry/{account}",
}


def test_the_table_covers_every_route(settings: GatewaySettings) -> None:
    app = create_app(settings)
    # The console's routes sign in by cookie; tests/e2e covers their access checks.
    paths = {path for r in app.routes if (path := getattr(r, "path", "")) and not path.startswith("/console")}
    paths = paths - OPEN - SIGNED
    covered = {path.split("?")[0] for _, path, _, _ in ROUTES}
    normalised = {p.replace("{application}", "authz").replace("{name}", "{name}") for p in paths}
    missing = {p for p in normalised if not any(_same_shape(p, c) for c in covered)}
    assert not missing, f"routes without an access test: {sorted(missing)}"


def _same_shape(route: str, tested: str) -> bool:
    a, b = route.strip("/").split("/"), tested.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x.startswith("{") or y.startswith("{") for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(("method", "path", "body", "least"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_every_endpoint_denies_then_allows(
    api: httpx.AsyncClient, tokens: Tokens, method: str, path: str, body: Any, least: str
) -> None:
    name = f"p-{uuid.uuid4().hex[:8]}"
    pipeline = waiting_pipeline(name)
    assert (
        await api.put(f"/applications/authz/pipelines/{name}", json=pipeline, headers=bearer(tokens.root))
    ).status_code == 201
    execution = await start(api, tokens.root, pipeline)
    await until_waiting(api, tokens.root, execution)
    url = path.format(name=name, execution=execution)
    payload = {"pipeline": pipeline} if body == "execution" else (pipeline if body == "pipeline" else body)

    async def call(headers: dict[str, str]) -> httpx.Response:
        return await api.request(method, url, json=payload, headers=headers)

    denial(await call({}), 401)
    denial(await call(bearer("gnk_not-a-real-token")), 401)
    denial(await call(bearer(tokens.revoked)), 401)
    if least == "any":  # any authenticated caller; nothing application-specific is shown
        allowed = await call(bearer(tokens.stranger))
        assert allowed.status_code == 200, allowed.text[:300]
        return
    reason = denial(await call(bearer(tokens.stranger)), 403)
    assert "sam" in reason
    if least != "root":
        lower = {"viewer": tokens.stranger, "deployer": tokens.viewer, "editor": tokens.viewer}[least]
        denial(await call(bearer(lower)), 403)
    allowed = await call(bearer(getattr(tokens, least)))
    assert allowed.status_code not in (401, 403), allowed.text[:300]
    await api.put(f"/executions/{execution}/cancel", json={}, headers=bearer(tokens.root))


async def test_listings_show_only_readable_applications(api: httpx.AsyncClient, tokens: Tokens) -> None:
    other = {"application": "secret-app", "name": "hidden", "stages": [{"refId": "w", "type": "wait", "waitTime": 0}]}
    assert (
        await api.put("/applications/secret-app/pipelines/hidden", json=other, headers=bearer(tokens.root))
    ).status_code == 201
    names = {a["name"] for a in (await api.get("/applications", headers=bearer(tokens.viewer))).json()}
    assert "secret-app" not in names and "authz" in names
    assert (await api.get("/applications", headers=bearer(tokens.stranger))).json() == []
    assert "secret-app" in {a["name"] for a in (await api.get("/applications", headers=bearer(tokens.root))).json()}


async def test_approvers_limit_who_may_judge_and_the_record_names_the_token(
    api: httpx.AsyncClient, tokens: Tokens
) -> None:
    execution = await start(api, tokens.root, waiting_pipeline(f"a-{uuid.uuid4().hex[:6]}", ["group:release-managers"]))
    await until_waiting(api, tokens.root, execution)
    url = f"/executions/{execution}/stages/gate/judgment"
    reason = denial(await api.post(url, json={"input": "ship"}, headers=bearer(tokens.deployer)), 403)
    assert "approvers" in reason and "dan" in reason
    judged = await api.post(
        url, json={"input": "ship"}, headers={**bearer(tokens.releaser), "X-Gennaker-User": "mallory"}
    )
    assert judged.status_code == 200, judged.text
    assert judged.json()["user"] == "rita"  # the token's subject, never a name the caller supplies
    await api.put(f"/executions/{execution}/cancel", json={}, headers=bearer(tokens.root))


def make_jwt(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "olive", "groups": ["viewers"], "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "test-key"})


async def test_oidc_jwts_are_verified(api: httpx.AsyncClient, oidc_key: Any) -> None:
    ok = await api.get("/applications/authz/pipelines", headers=bearer(make_jwt(oidc_key)))
    assert ok.status_code == 200, ok.text
    denial(
        await api.post("/executions", json={"pipeline": waiting_pipeline("x")}, headers=bearer(make_jwt(oidc_key))), 403
    )
    assert "expired" in denial(
        await api.get("/accounts", headers=bearer(make_jwt(oidc_key, exp=int(time.time()) - 120))), 401
    )
    assert (
        "issuer"
        in denial(await api.get("/accounts", headers=bearer(make_jwt(oidc_key, iss="https://evil.test"))), 401).lower()
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    denial(await api.get("/accounts", headers=bearer(make_jwt(other_key))), 401)


async def test_probes_need_no_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/readyz")).status_code == 200

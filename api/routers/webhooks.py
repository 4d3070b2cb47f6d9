"""Webhook triggers: generic, GitHub push, Jenkins build notifications, registry pushes.

Answers: 202 with what started (or "no pipeline matched" and why), one generic 401 when the delivery
proves itself to no trigger of its source — a wrong secret, no such source and a secret the gateway
lacks all answer the same (the reason goes to the gateway log) — and 422 for a malformed payload.
A redelivery starts nothing new: the started entries come back with `replayed: true`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep, StoreDep, TemporalClientDep
from api.errors import ApiError
from api.limits import load_json
from api.settings import GatewaySettings
from core.triggers import (
    AUTH_FAILED,
    UNRELATED,
    DispatchResult,
    TriggerEvent,
    authenticated_answer,
    dispatch,
    full_match,
    payload_value,
)
from workflows.artifacts import Artifact
from workflows.model import PipelineSpec
from workflows.state import TriggerInfo
from workflows.trigger_artifacts import TriggerArtifactsInvalid, git_repo_artifact, payload_artifacts
from workflows.triggers import GitTrigger, JenkinsTrigger, Trigger, WebhookTrigger

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Source = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


async def _json_object(request: Request) -> dict[str, Any]:
    data = load_json(await request.body(), "body")
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_payload", "payload must be a JSON object", "body")
    return data


def _delivery(given: str | None, raw: bytes) -> str:
    return given or "sha256-" + hashlib.sha256(raw).hexdigest()[:32]


UNAUTHENTICATED = {
    "error": {
        "code": "unauthorized",
        "message": "the delivery could not be authenticated for this source (check the secret or signature)",
    }
}


def _secret_refusal(settings: GatewaySettings, secret_name: str, given: str | None, header: str) -> str | None:
    """None when `given` is the named secret; else the reason, for the gateway log only."""
    expected = settings.trigger_secret(secret_name)
    if expected is None:
        return f"{AUTH_FAILED}: secret {secret_name!r} is not configured on the gateway"
    if given is None or not hmac.compare_digest(expected.encode(), given.encode()):
        return f"{AUTH_FAILED}: {header} does not match secret {secret_name!r}"
    return None


def _answer(result: DispatchResult, source: str) -> JSONResponse:
    visible = authenticated_answer(result, source)
    if visible is None:
        return JSONResponse(UNAUTHENTICATED, status_code=401)
    return JSONResponse(visible.model_dump(mode="json"), status_code=202)


@router.post("/webhook/{source}", summary="Generic webhook trigger", status_code=202, response_model=DispatchResult)
async def generic_webhook(
    source: Source,
    request: Request,
    client: TemporalClientDep,
    store: StoreDep,
    settings: SettingsDep,
    x_gennaker_secret: Annotated[str | None, Header()] = None,
    x_gennaker_delivery: Annotated[str | None, Header(description="Delivery id for de-duplication")] = None,
) -> JSONResponse:
    payload = await _json_object(request)

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, WebhookTrigger)
        if trigger.source != source:
            return UNRELATED
        if refused := _secret_refusal(settings, trigger.secret, x_gennaker_secret, "X-Gennaker-Secret"):
            return refused
        for path, pattern in trigger.payloadConstraints.items():
            value = payload_value(payload, path)
            if value is None or not full_match(pattern, str(value)):
                return f"payloadConstraints: {path}={value!r} does not match {pattern!r}"
        return None

    summary = {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool)}
    event = TriggerEvent(
        kind="webhook",
        delivery_id=_delivery(x_gennaker_delivery, await request.body()),
        info=TriggerInfo(
            type="webhook",
            source=source,
            payload=dict(list(summary.items())[:20]),
            artifacts=_artifacts_of(payload),
        ),
        matcher=matcher,
    )
    return _answer(await dispatch(client, settings, store, event, policy=request.app.state.policy), f"webhook/{source}")


def _artifacts_of(payload: dict[str, Any]) -> list[Artifact]:
    """Spinnaker's webhook `artifacts` list, validated; a bad entry is a 422 naming it."""
    try:
        return payload_artifacts(payload)
    except TriggerArtifactsInvalid as exc:
        raise ApiError(422, "invalid_artifact", exc.message, exc.field) from None


def _pushed_repository(payload: dict[str, Any], sha: str, branch: str) -> list[Artifact]:
    """The pushed commit as a `git/repo` artifact (clone URL + sha), as Spinnaker's git trigger gives."""
    clone_url = payload_value(payload, "repository.clone_url")
    return [git_repo_artifact(str(clone_url), sha, branch)] if isinstance(clone_url, str) and clone_url else []


def _github_push(payload: dict[str, Any]) -> tuple[str, str, str, str, str]:
    try:
        repository = payload["repository"]
        owner = repository["owner"].get("login") or repository["owner"]["name"]
        ref = str(payload["ref"])
        return str(owner), str(repository["name"]), ref.removeprefix("refs/heads/"), str(payload["after"]), ref
    except (KeyError, TypeError, AttributeError) as exc:
        raise ApiError(422, "invalid_payload", f"not a GitHub push event: missing {exc}", "body") from None


def github_push_key(owner: str, repo: str, ref: str, after: str, raw: bytes) -> str:
    """The idempotency key of a GitHub push, from what its signature covers (the body), never from
    X-GitHub-Delivery, which is not signed: a captured push re-sent with a new or no delivery id is
    the same push and starts nothing new. Repository, ref and `after` keep the key readable; the
    body digest tells two genuine pushes of one commit apart (GitHub's bodies differ in pusher,
    timestamps and `before`)."""
    return f"github:{owner}/{repo}:{ref}:{after}:sha256-{hashlib.sha256(raw).hexdigest()}"


@router.post("/git/github", summary="GitHub push events (HMAC X-Hub-Signature-256)", status_code=202)
async def github_push(
    request: Request,
    client: TemporalClientDep,
    store: StoreDep,
    settings: SettingsDep,
    x_github_event: Annotated[str | None, Header()] = None,
    x_hub_signature_256: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    raw = await request.body()
    if x_github_event == "ping":
        return JSONResponse({"message": "pong"}, status_code=200)
    if x_github_event not in (None, "push"):
        return JSONResponse({"message": f"event {x_github_event!r} ignored; only push triggers"}, status_code=202)
    payload = await _json_object(request)
    owner, repo, branch, sha, ref = _github_push(payload)

    def signature_refusal(secret_name: str) -> str | None:
        # GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256 of the raw body with the secret.
        secret = settings.trigger_secret(secret_name)
        if secret is None:
            return f"{AUTH_FAILED}: secret {secret_name!r} is not configured on the gateway"
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not x_hub_signature_256 or not hmac.compare_digest(expected.encode(), x_hub_signature_256.encode()):
            return f"{AUTH_FAILED}: X-Hub-Signature-256 does not verify with secret {secret_name!r}"
        return None

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, GitTrigger)
        if (trigger.project, trigger.slug) != (owner, repo):
            return UNRELATED
        if refused := signature_refusal(trigger.secret):
            return refused
        if not full_match(trigger.branch, branch):
            return f"branch {branch!r} does not match {trigger.branch!r}"
        return None

    pusher = payload_value(payload, "pusher.name")
    event = TriggerEvent(
        kind="git",
        delivery_id=github_push_key(owner, repo, ref, sha, raw),
        info=TriggerInfo(
            type="git",
            user=f"github:{pusher}" if pusher else None,
            source=f"github:{owner}/{repo}",
            payload={"project": owner, "slug": repo, "branch": branch, "ref": ref, "hash": sha},
            artifacts=_pushed_repository(payload, sha, branch),
        ),
        matcher=matcher,
    )
    return _answer(await dispatch(client, settings, store, event, policy=request.app.state.policy), "github")


@router.post("/jenkins/{master}", summary="Jenkins Notification plugin (build finished)", status_code=202)
async def jenkins_build(
    master: Source,
    request: Request,
    client: TemporalClientDep,
    store: StoreDep,
    settings: SettingsDep,
    x_gennaker_secret: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    payload = await _json_object(request)
    # Notification plugin JSON: {"name": job, "url": ..., "build": {"number", "phase", "status", "full_url"}}
    try:
        job = str(payload["name"])
        build = payload["build"]
        number = int(build["number"])
        phase = str(build["phase"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ApiError(422, "invalid_payload", f"not a Jenkins notification: missing or bad {exc}", "body") from None
    status = str(build.get("status") or "")
    if phase != "FINALIZED":
        return JSONResponse({"message": f"phase {phase} ignored; builds trigger when FINALIZED"}, status_code=202)

    def matcher(spec: PipelineSpec, trigger: Trigger) -> str | None:
        assert isinstance(trigger, JenkinsTrigger)
        if (trigger.master, trigger.job) != (master, job):
            return UNRELATED
        if refused := _secret_refusal(settings, trigger.secret, x_gennaker_secret, "X-Gennaker-Secret"):
            return refused
        if status not in trigger.status:
            return f"build status {status} is not one of {', '.join(trigger.status)}"
        return None

    event = TriggerEvent(
        kind="jenkins",
        delivery_id=f"{master}/{job}/{number}",
        info=TriggerInfo(
            type="jenkins",
            source=f"jenkins:{master}/{job}",
            payload={
                "master": master,
                "job": job,
                "buildNumber": number,
                "status": status,
                "url": build.get("full_url"),
            },
        ),
        matcher=matcher,
    )
    return _answer(await dispatch(client, settings, store, event, policy=request.app.state.policy), f"jenkins/{master}")

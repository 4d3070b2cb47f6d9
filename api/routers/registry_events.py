"""Registry push notifications: POST /webhooks/registry/{account} (the distribution registry's
`notifications` endpoint), verified with a shared secret, parsed into `ImagePushed` events.

Configure the registry (config.yml) with, per account:

    notifications:
      endpoints:
        - name: gennaker
          url: https://gennaker.example.com/webhooks/registry/<account>
          headers: {Authorization: [Bearer <secret>]}

and the gateway with the same secret: the trigger secret `registry-<account>`
(GENNAKER_TRIGGER_SECRET_REGISTRY_<ACCOUNT> or the trigger secrets file) for one account, else
GENNAKER_REGISTRY_WEBHOOK_SECRET for all. Without a secret the endpoint refuses every delivery
(the same 401 as a wrong secret, reason in the gateway log) rather than accepting anyone's events.

Each tag push starts the saved pipelines whose `docker` trigger matches (core/triggers.py; the
registry's event id makes a redelivery start nothing new), then goes to a bounded in-memory log
per gateway process (GET /webhooks/registry/events) and to the subscribers of `registry_event_log`.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.deps import AccessDep, SettingsDep, StoreDep, TemporalClientDep
from api.errors import ApiError
from api.limits import JsonTooDeep, load_json
from core.errors import ServiceError
from core.triggers import StartedExecution, dispatch_registry_push

log = logging.getLogger("gennaker.api.registry")
router = APIRouter(prefix="/webhooks/registry", tags=["webhooks"])

SECRET_ENV = "GENNAKER_REGISTRY_WEBHOOK_SECRET"
KEEP_EVENTS = 500
UNAUTHENTICATED_MESSAGE = "the delivery could not be authenticated (Authorization: Bearer <webhook secret>)"
MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class EventTarget(_Open):
    mediaType: str | None = None
    digest: str | None = None
    repository: str | None = None
    url: str | None = None
    tag: str | None = None


class EventRequest(_Open):
    host: str | None = None
    addr: str | None = None
    useragent: str | None = None


class EventActor(_Open):
    name: str | None = None


class RegistryNotification(_Open):
    """One event of the distribution registry's envelope (application/vnd.docker.distribution.events.v1+json)."""

    id: str
    timestamp: datetime | None = None
    action: str
    target: EventTarget = Field(default_factory=EventTarget)
    request: EventRequest = Field(default_factory=EventRequest)
    actor: EventActor = Field(default_factory=EventActor)


class RegistryEnvelope(_Open):
    events: list[RegistryNotification] = Field(default_factory=list)


class ImagePushed(BaseModel):
    """A tag was pushed: what `docker` triggers match on (account, repository, tag)."""

    account: str
    registry: str | None = Field(default=None, description="host:port the pusher used")
    repository: str
    tag: str
    digest: str | None = None
    image: str = Field(description="<registry>/<repository>:<tag>, or <repository>:<tag> if the host is unknown")
    eventId: str
    pushedAt: datetime | None = None
    actor: str | None = None
    receivedAt: datetime


class WebhookAccepted(BaseModel):
    accepted: list[ImagePushed]
    ignored: int = Field(description="Events that are not tag pushes (blob pushes, pulls, deletes) or repeats")
    started: list[StartedExecution] = Field(default_factory=list, description="Pipelines the pushes triggered")


EventHandler = Callable[[ImagePushed], Awaitable[None]]


class RegistryEventLog:
    """Recent pushes (newest last), de-duplicated by event id (the registry retries deliveries)."""

    def __init__(self, keep: int = KEEP_EVENTS) -> None:
        self._events: deque[ImagePushed] = deque(maxlen=keep)
        self._seen: deque[str] = deque(maxlen=keep * 4)
        self._handlers: list[EventHandler] = []

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    async def record(self, event: ImagePushed) -> None:
        self._seen.append(event.eventId)
        self._events.append(event)
        for handler in self._handlers:
            try:
                await handler(event)
            except Exception:  # a trigger problem must not make the registry redeliver forever
                log.exception("registry event handler failed for %s", event.image)

    def recent(self, account: str | None, repository: str | None, limit: int) -> list[ImagePushed]:
        found = [
            e
            for e in reversed(self._events)
            if (account is None or e.account == account) and (repository is None or e.repository == repository)
        ]
        return found[:limit]


def registry_event_log(app: FastAPI) -> RegistryEventLog:
    """The app's event log (created on first use); subscribe trigger handlers here."""
    existing = getattr(app.state, "registry_events", None)
    if isinstance(existing, RegistryEventLog):
        return existing
    created = RegistryEventLog()
    app.state.registry_events = created
    return created


def _configured_secret(settings: Any, account: str) -> str | None:
    per_account = getattr(settings, "trigger_secret", None)
    if callable(per_account) and (found := per_account(f"registry-{account}")):
        return str(found)
    value = getattr(settings, "registry_webhook_secret", None)
    if value is not None and hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value) if value else os.environ.get(SECRET_ENV) or None


def _presented_secret(request: Request) -> str:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("x-gennaker-webhook-secret", "")


def image_pushed(account: str, event: RegistryNotification, now: datetime) -> ImagePushed | None:
    """The push of a tagged manifest, or None for anything else (blob uploads, pulls, deletes)."""
    target = event.target
    if event.action != "push" or not target.tag or not target.repository:
        return None
    if target.mediaType is not None and target.mediaType not in MANIFEST_MEDIA_TYPES:
        return None
    host = event.request.host or (urlsplit(target.url).netloc if target.url else None) or None
    name = f"{host}/{target.repository}" if host else target.repository
    return ImagePushed(
        account=account,
        registry=host,
        repository=target.repository,
        tag=target.tag,
        digest=target.digest,
        image=f"{name}:{target.tag}",
        eventId=event.id,
        pushedAt=event.timestamp,
        actor=event.actor.name,
        receivedAt=now,
    )


AccountPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Registry account name")]


@router.post(
    "/{account}",
    status_code=202,
    response_model=WebhookAccepted,
    summary="Registry push notifications (distribution registry `notifications` envelope)",
)
async def receive_registry_events(
    account: AccountPath, request: Request, settings: SettingsDep, client: TemporalClientDep, store: StoreDep
) -> WebhookAccepted:
    secret = _configured_secret(settings, account)
    # No secret for this account and a wrong secret answer alike (one 401), so the endpoint does not
    # tell a prober which accounts exist; the operator finds the reason in the gateway log.
    if secret is None:
        log.warning(
            "registry %s: delivery refused: no webhook secret configured (GENNAKER_TRIGGER_SECRET_REGISTRY_%s or %s)",
            account,
            account.upper().replace("-", "_"),
            SECRET_ENV,
        )
        raise ApiError(401, "unauthorized", UNAUTHENTICATED_MESSAGE)
    if not hmac.compare_digest(_presented_secret(request).encode(), secret.encode()):
        log.warning("registry %s: delivery refused: missing or wrong webhook secret", account)
        raise ApiError(401, "unauthorized", UNAUTHENTICATED_MESSAGE)
    try:
        envelope = RegistryEnvelope.model_validate(load_json(await request.body(), "body"))
    except JsonTooDeep:
        raise
    except (ServiceError, ValueError, ValidationError) as exc:
        raise ApiError(422, "invalid_notification", f"not a registry notification envelope: {exc}") from None
    events = registry_event_log(request.app)
    now = datetime.now(UTC)
    answer = WebhookAccepted(accepted=[], ignored=0)
    for event in envelope.events:
        pushed = image_pushed(account, event, now)
        if pushed is None or events.seen(pushed.eventId):
            answer.ignored += 1
            continue
        # Start triggered pipelines before recording: if Temporal is down the error makes the registry
        # redeliver, and the event id (idempotency key) keeps a redelivery from starting twice.
        result = await dispatch_registry_push(
            client,
            settings,
            store,
            account=account,
            repository=pushed.repository,
            tag=pushed.tag,
            digest=pushed.digest,
            delivery_id=pushed.eventId,
            registry_host=pushed.registry,
            policy=request.app.state.policy,
        )
        answer.started += result.started
        await events.record(pushed)
        answer.accepted.append(pushed)
    if answer.accepted:
        log.info(
            "registry %s: %s pushed; started %s",
            account,
            ", ".join(e.image for e in answer.accepted),
            ", ".join(s.id for s in answer.started) or "nothing",
        )
    return answer


@router.get("/events", response_model=list[ImagePushed], summary="Recent image pushes received (newest first)")
async def recent_registry_events(
    request: Request,
    access: AccessDep,
    account: str | None = None,
    repository: str | None = None,
    limit: Annotated[int, Query(ge=1, le=KEEP_EVENTS)] = 50,
) -> list[ImagePushed]:
    access.require_admin("the registry event log")
    return registry_event_log(request.app).recent(account, repository, limit)

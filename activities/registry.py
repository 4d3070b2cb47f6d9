"""Docker registries: an HTTP API v2 client, the Find Image activity, health, and the account provider.

One `RegistryClient` per account, built by the worker that holds the account's credentials
(`build_registry_account`). The password is read from its file or environment variable each time
the registry asks for it, so a rotated secret is picked up without a restart, and it never leaves
the worker. Authentication follows the registry's challenge: `Basic` (htpasswd) or `Bearer` (token
service, Docker Hub / GCR style, tokens cached per scope).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountHealth, ProvidedAccount, RegistryAccount
from activities.grants import ApplicationGrants

if TYPE_CHECKING:
    from activities.bake import BakeSettings
    from activities.egress import EgressPolicy

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
INDEX_TYPES = frozenset(MANIFEST_TYPES[2:])
# Errors a retry cannot fix; the stages name them in their RetryPolicy.
UNAUTHORIZED = "RegistryUnauthorized"
SECRET_UNAVAILABLE = "SecretUnavailable"
NOT_FOUND = "ImageNotFound"
REPOSITORY_NOT_GRANTED = "RepositoryNotGranted"
NON_RETRYABLE = [UNAUTHORIZED, SECRET_UNAVAILABLE, NOT_FOUND, REPOSITORY_NOT_GRANTED]
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(ApplicationError):
    def __init__(self, account: str, address: str, cause: str) -> None:
        super().__init__(f"registry {account}: cannot reach {address}: {cause}", type="RegistryUnreachable")


@dataclass
class Manifest:
    digest: str
    media_type: str
    raw: bytes
    body: dict[str, Any]


class RegistryClient:
    """Blocking client for one account (activities run on the worker's thread pool)."""

    def __init__(self, account: RegistryAccount, timeout: float = 15.0) -> None:
        self.account = account
        scheme = "http" if account.insecure else "https"
        self._http = httpx.Client(base_url=f"{scheme}://{account.address}", timeout=timeout, follow_redirects=True)
        self._authorization: dict[str, str] = {}  # scope -> Authorization header value

    def close(self) -> None:
        self._http.close()

    def unauthorized(self, status: str = "401 Unauthorized") -> ApplicationError:
        where = (
            f"check the password in {self.account.password.describe()}"
            if self.account.password is not None
            else "the registry wants credentials: set `username` and `password` (file or env) in gennaker.yaml"
        )
        return ApplicationError(f"registry {self.account.name}: {status} — {where}", type=UNAUTHORIZED)

    def credentials(self) -> tuple[str, str] | None:
        if self.account.username is None or self.account.password is None:
            return None
        try:
            return self.account.username, self.account.password.read()
        except (OSError, LookupError) as exc:
            raise ApplicationError(
                f"registry {self.account.name}: cannot read the password from {self.account.password.describe()}: "
                f"{exc}",
                type=SECRET_UNAVAILABLE,
            ) from None

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(rest))
        creds = self.credentials()
        if scheme.lower() == "basic":
            if creds is None:
                raise self.unauthorized()
            token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            self._authorization["*"] = f"Basic {token}"
        elif scheme.lower() == "bearer" and params.get("realm"):
            query = {
                k: v for k, v in (("service", params.get("service")), ("scope", params.get("scope") or scope)) if v
            }
            try:
                answer = httpx.get(params["realm"], params=query, auth=creds, timeout=self._http.timeout)
            except httpx.TransportError as exc:
                raise RegistryUnreachable(self.account.name, params["realm"], str(exc)) from None
            if answer.status_code in (401, 403):
                raise self.unauthorized(f"{answer.status_code} from the token service {params['realm']}")
            answer.raise_for_status()
            body = answer.json()
            self._authorization[scope] = f"Bearer {body.get('token') or body.get('access_token')}"
        else:
            raise self.unauthorized(f"401 with an unsupported challenge {challenge!r}")

    def request(self, method: str, path: str, scope: str = "", **kwargs: Any) -> httpx.Response:
        """One API call, authenticating (again) once when the registry challenges it."""
        extra = dict(kwargs.pop("headers", None) or {})
        for attempt in range(2):
            headers = dict(extra)
            authorization = self._authorization.get(scope) or self._authorization.get("*")
            if authorization:
                headers["Authorization"] = authorization
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise RegistryUnreachable(self.account.name, self.account.address, str(exc)) from None
            if response.status_code >= 500:
                raise ApplicationError(
                    f"registry {self.account.name}: {method} {path}: {response.status_code} {response.text[:200]}",
                    type="RegistryServerError",
                )
            if response.status_code != 401:
                return response
            if attempt == 0:
                self._authenticate(response.headers.get("www-authenticate", ""), scope)
        raise self.unauthorized()

    def ping(self) -> None:
        self.request("GET", "/v2/").raise_for_status()

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository` (following pagination); [] when the repository does not exist."""
        found: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            response = self.request("GET", path, scope=f"repository:{repository}:pull")
            if response.status_code == 404:
                return found
            response.raise_for_status()
            found += response.json().get("tags") or []
            link = re.match(r"<([^>]+)>", response.headers.get("link", ""))
            path = link.group(1) if link else None
        return found

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        response = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        media_type = response.headers.get("content-type", "").split(";")[0] or body.get("mediaType", "")
        digest = response.headers.get("docker-content-digest") or ""
        return Manifest(digest=digest, media_type=media_type, raw=response.content, body=body)

    def image_config(self, repository: str, manifest: Manifest) -> dict[str, Any]:
        """The image config blob (`created`, `config.Labels`…); for an index, its first image's."""
        if manifest.media_type in INDEX_TYPES or "manifests" in manifest.body:
            entries = manifest.body.get("manifests") or []
            if not entries:
                return {}
            linux = [m for m in entries if (m.get("platform") or {}).get("os") in (None, "linux")]
            child = self.manifest(repository, (linux or entries)[0]["digest"])
            return self.image_config(repository, child) if child else {}
        digest = (manifest.body.get("config") or {}).get("digest")
        if not digest:
            return {}
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull")
        response.raise_for_status()
        config: dict[str, Any] = response.json()
        return config

    def put_manifest(self, repository: str, tag: str, manifest: Manifest) -> None:
        """Point another tag at an existing manifest (no layers move)."""
        response = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{tag}",
            scope=f"repository:{repository}:pull,push",
            content=manifest.raw,
            headers={"Content-Type": manifest.media_type},
        )
        response.raise_for_status()


# ---- repository grants -----------------------------------------------------------------------------

GRANTS_FIELD_DESCRIPTION = (
    "The execution's grants, stamped by the workflow (workflows/account_calls.py); the worker checks the "
    "repository against them before touching the registry. None: an input recorded before repository grants"
)


def authorize_repository(grants: ApplicationGrants | None, account: str, repository: str, doing: str) -> None:
    """Refuse (non-retryable) before any registry request when the application's grants do not cover
    `repository` (policy `resources.repositories`, docs/security.md). The check runs here, on the worker
    holding the credentials, so no workflow path can reach a repository its application does not own."""
    if grants is None:
        return
    refusal = grants.repository_refusal(repository)
    if refusal is not None:
        raise ApplicationError(
            f"{refusal}: {doing} in registry account {account} refused. Nothing was read or pushed.",
            type=REPOSITORY_NOT_GRANTED,
            non_retryable=True,
        )


# ---- Find Image -------------------------------------------------------------------------------------

_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def semver_key(tag: str) -> tuple[Any, ...] | None:
    """Sort key by SemVer 2.0 precedence (`v` prefix allowed); None if `tag` is not a version."""
    match = _SEMVER.match(tag)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    # Numeric identifiers sort below alphanumeric ones and numerically among themselves.
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


def parse_created(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))  # Go writes nanoseconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ImageQuery(BaseModel):
    repository: str
    tagRegex: str = Field(default=".*", description="Full match against the tag")
    order: Literal["newest", "semver"] = "newest"
    maxTags: int = Field(default=500, description="Creation times are read for at most this many matching tags")
    grants: ApplicationGrants | None = Field(default=None, description=GRANTS_FIELD_DESCRIPTION)


class FoundImage(BaseModel):
    image: str = Field(description="<registry>/<repository>:<tag>")
    digest: str
    imageWithDigest: str
    registry: str
    repository: str
    tag: str
    created: datetime | None = None
    candidates: int = Field(description="Tags that matched the regex")


class RegistryActivities:
    """Registry reads for one account; the worker serving the account's queue runs them."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    @property
    def account(self) -> RegistryAccount:
        return self.client.account

    @activity.defn(name="find_image")
    def find_image(self, query: ImageQuery) -> FoundImage:
        name, repo = self.account.name, query.repository
        authorize_repository(query.grants, name, repo, f"reading the tags of {repo}")
        pattern = re.compile(query.tagRegex)
        tags = [t for t in self.client.tags(repo) if pattern.fullmatch(t)]
        if not tags:
            raise ApplicationError(f"registry {name}: no tag of {repo} matches {query.tagRegex!r}", type=NOT_FOUND)
        chosen: tuple[str, Manifest, datetime | None] | None = None
        if query.order == "semver":
            versions = [(k, t) for t in tags if (k := semver_key(t)) is not None]
            if not versions:
                raise ApplicationError(
                    f"registry {name}: tags of {repo} matching {query.tagRegex!r} are not semantic versions: "
                    + ", ".join(sorted(tags)[:10]),
                    type=NOT_FOUND,
                )
            tag = max(versions)[1]
            manifest = self.client.manifest(repo, tag)
            if manifest is not None:
                chosen = (tag, manifest, parse_created(self.client.image_config(repo, manifest).get("created")))
        else:
            for index, tag in enumerate(sorted(tags)[-query.maxTags :]):
                activity.heartbeat(f"reading {repo}:{tag} ({index + 1}/{len(tags)})")
                manifest = self.client.manifest(repo, tag)
                if manifest is None:
                    continue  # deleted while we looked
                created = parse_created(self.client.image_config(repo, manifest).get("created"))
                floor = datetime.min.replace(tzinfo=UTC)
                if chosen is None or ((created or floor), tag) > ((chosen[2] or floor), chosen[0]):
                    chosen = (tag, manifest, created)
        if chosen is None:
            raise ApplicationError(
                f"registry {name}: the matching tags of {repo} vanished while reading", type=NOT_FOUND
            )
        tag, manifest, created = chosen
        address = self.account.address
        return FoundImage(
            image=f"{address}/{repo}:{tag}",
            digest=manifest.digest,
            imageWithDigest=f"{address}/{repo}@{manifest.digest}",
            registry=address,
            repository=repo,
            tag=tag,
            created=created,
            candidates=len(tags),
        )


# ---- health and the provider ------------------------------------------------------------------------


def check_registry_health(client: RegistryClient, engine: Any = None) -> AccountHealth:
    account = client.account
    details = {"address": account.address, "tls": "no (insecure)" if account.insecure else "yes"}
    if account.repositories:
        details["repositories"] = ", ".join(account.repositories)
    if engine is not None:
        details["dockerEngine"] = engine()
    reachable = authenticated = False
    error: str | None = None
    try:
        client.ping()
        reachable = authenticated = True
    except ApplicationError as exc:
        reachable = exc.type != "RegistryUnreachable"
        error = exc.message
    except httpx.HTTPStatusError as exc:
        reachable = True
        error = f"registry {account.name}: GET /v2/ answered {exc.response.status_code}"
    return AccountHealth(
        name=account.name,
        kind="registry",
        taskQueue=account.queue,
        healthy=reachable and authenticated,
        reachable=reachable,
        authenticated=authenticated,
        lastError=error,
        details=details,
        checkedAt=datetime.now(UTC),
    )


def build_registry_account(
    account: RegistryAccount, egress: EgressPolicy | None = None, bake: BakeSettings | None = None
) -> ProvidedAccount:
    """Everything a worker needs to serve `account`: Find Image and Bake on the account's queue
    (bakes obey the worker's egress policy and `bake:` confinement)."""
    from activities.bake import BakeActivities

    client = RegistryClient(account)
    reads = RegistryActivities(client)
    bakes = BakeActivities(client, egress, bake)

    def close() -> None:
        bakes.close()
        client.close()

    return ProvidedAccount(
        name=account.name,
        kind="registry",
        queue=account.queue,
        activities=[reads.find_image, bakes.bake_image],
        check_health=lambda: check_registry_health(client, bakes.engine_status),
        close=close,
    )

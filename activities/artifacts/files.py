"""Fetching single-file artifacts: `embedded/base64`, `http/file`, `github/file`, `gitlab/file`.

Every request goes through one function, `FileFetcher.get()`, with the worker's egress policy
(`activities.egress.guarded_client`) and a byte limit enforced while streaming. Credentials come
from the artifact's account (worker configuration) and are attached only when the URL lies under
that account's own origin/prefixes; credentialed requests never follow redirects, so a token is
never carried to a second host.

Wire formats (as the services document them):
- GitHub "Get repository content" (docs.github.com/rest/repos/contents): `GET
  /repos/{owner}/{repo}/contents/{path}?ref={version}` with `Accept: application/vnd.github.raw+json`
  answers the raw bytes; without it, JSON whose `content` is base64 (also accepted here).
  Spinnaker's github/file `reference` is exactly that contents URL and `version` the ref.
- GitLab "Get raw file from repository" (docs.gitlab.com/api/repository_files): `GET
  /projects/{id}/repository/files/{url-encoded path}/raw?ref={ref}` with a `PRIVATE-TOKEN` header.
  Spinnaker's gitlab/file `reference` is that URL and `version` the ref.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx
from temporalio import activity

from activities.artifacts.errors import (
    ARTIFACT_ACCOUNT,
    ARTIFACT_INVALID,
    ARTIFACT_NOT_FOUND,
    ARTIFACT_TOO_LARGE,
    ARTIFACT_UNAVAILABLE,
    artifact_error,
)
from activities.artifacts.model import Artifact
from activities.artifacts.settings import (
    ArtifactAccounts,
    GitHubArtifactAccount,
    GitLabArtifactAccount,
    HttpArtifactAccount,
    _Account,
)
from activities.artifacts.store import ContentStore, default_store_dir
from activities.egress import EgressDenied, guarded_client

# Spinnaker's built-in accounts that carry no credentials; pipelines exported from Spinnaker name them.
NO_CREDENTIAL_ACCOUNTS = frozenset({"embedded-artifact", "no-auth-http-account", "docker-registry", "custom-artifact"})
ACCOUNT_KINDS = {
    "http/file": "http",
    "github/file": "github",
    "gitlab/file": "gitlab",
    "git/repo": "git",
    "helm/chart": "helm",
}
A = TypeVar("A", bound=_Account)


@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    content_type: str


def heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)


def under(url: str, prefix: str) -> bool:
    """`url` lies under `prefix` (same scheme, host and port; path below the prefix's)."""
    a, b = urlsplit(url), urlsplit(prefix)
    if (a.scheme.lower(), (a.hostname or "").lower(), a.port) != (b.scheme.lower(), (b.hostname or "").lower(), b.port):
        return False
    # Dot segments are resolved first: `/repository/../admin` is not under `/repository/`.
    path = posixpath.normpath(a.path or "/")
    base = b.path if b.path.endswith("/") else b.path + "/"
    return path == b.path.rstrip("/") or path.startswith(base) or base == "/"


class FileFetcher:
    """Downloads single files for artifacts with the worker's accounts, limits and egress policy."""

    def __init__(self, settings: ArtifactAccounts, store: ContentStore | None = None) -> None:
        self.settings = settings
        self.store = store or ContentStore(settings.store_dir or default_store_dir())

    def account(self, artifact: Artifact, application: str, accounts: Sequence[A]) -> A | None:
        """The artifact's account of the right kind, if it names one, checked for this application."""
        name = artifact.artifactAccount
        if not name or name in NO_CREDENTIAL_ACCOUNTS:
            return None
        for account in accounts:
            if account.name == name:
                if not account.usable_by(application):
                    raise artifact_error(
                        artifact.describe(),
                        f"application {application} may not use artifact account {name}",
                        ARTIFACT_ACCOUNT,
                    )
                return account
        kind = ACCOUNT_KINDS.get(artifact.type, artifact.type)
        known = ", ".join(a.name for a in accounts) or "none"
        raise artifact_error(
            artifact.describe(),
            f"no {kind} artifact account {name!r} on this worker (configured: {known})",
            ARTIFACT_ACCOUNT,
        )

    def get(
        self,
        artifact: Artifact,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
        params: dict[str, str] | None = None,
        limit: int | None = None,
    ) -> Fetched:
        """The one way artifacts reach the network: egress-checked, time- and size-bounded."""
        what = artifact.describe()
        limit = limit or self.settings.limits.max_file_bytes
        credentialed = auth is not None or bool(
            headers and any(k.lower() in ("authorization", "private-token") for k in headers)
        )
        try:
            with (
                guarded_client(self.settings.egress, timeout=min(self.settings.limits.max_seconds, 60.0)) as client,
                client.stream(
                    "GET", url, headers=headers, auth=auth, params=params, follow_redirects=not credentialed
                ) as response,
            ):
                if 300 <= response.status_code < 400 and credentialed:
                    raise artifact_error(
                        what,
                        f"{url} redirects ({response.status_code}); credentials are not sent onwards",
                        ARTIFACT_INVALID,
                    )
                if response.status_code in (401, 403):
                    raise artifact_error(
                        what, f"{url} refused the request ({response.status_code}); check the account", ARTIFACT_ACCOUNT
                    )
                if response.status_code == 404:
                    raise artifact_error(what, f"{url} was not found (404)", ARTIFACT_NOT_FOUND)
                if response.status_code == 429 or response.status_code >= 500:
                    raise artifact_error(
                        what, f"{url} answered {response.status_code}; will retry", ARTIFACT_UNAVAILABLE
                    )
                if response.status_code >= 400:
                    raise artifact_error(what, f"{url} answered {response.status_code}", ARTIFACT_INVALID)
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise artifact_error(what, f"{url} is {declared} bytes; the limit is {limit}", ARTIFACT_TOO_LARGE)
                body = bytearray()
                for chunk in response.iter_bytes(1 << 16):
                    body.extend(chunk)
                    if len(body) > limit:
                        raise artifact_error(
                            what, f"{url} is larger than the limit of {limit} bytes", ARTIFACT_TOO_LARGE
                        )
                    heartbeat(f"downloading {what}: {len(body)} bytes")
                return Fetched(str(response.url), bytes(body), response.headers.get("content-type", ""))
        except EgressDenied as exc:
            raise EgressDenied(f"artifact {what}: {exc.message}") from None
        except httpx.TooManyRedirects:
            raise artifact_error(what, f"{url} redirects too many times", ARTIFACT_INVALID) from None
        except httpx.TransportError as exc:
            raise artifact_error(
                what, f"cannot reach {url}: {type(exc).__name__}: {exc}", ARTIFACT_UNAVAILABLE
            ) from None

    def fetch(self, artifact: Artifact, application: str) -> bytes:
        """The content of a single-file artifact."""
        kind = artifact.type
        if kind == "embedded/base64":
            return self.embedded(artifact, application)
        if not artifact.reference:
            raise artifact_error(artifact.describe(), "has no reference (the URL to fetch)", ARTIFACT_INVALID)
        if kind == "http/file":
            return self.http_file(artifact, application)
        if kind == "github/file":
            return self.github_file(artifact, application)
        if kind == "gitlab/file":
            return self.gitlab_file(artifact, application)
        raise artifact_error(
            artifact.describe(),
            f"type {kind} is not a single file (use embedded/base64, http/file, github/file or gitlab/file)",
            ARTIFACT_INVALID,
        )

    def embedded(self, artifact: Artifact, application: str) -> bytes:
        if artifact.reference:
            try:
                return base64.b64decode(artifact.reference, validate=True)
            except (binascii.Error, ValueError):
                raise artifact_error(artifact.describe(), "reference is not valid base64", ARTIFACT_INVALID) from None
        digest = artifact.metadata.get("contentDigest")
        if isinstance(digest, str):
            return self.store.get(application, digest)
        raise artifact_error(
            artifact.describe(), "has neither a base64 reference nor a contentDigest", ARTIFACT_INVALID
        )

    def http_file(self, artifact: Artifact, application: str) -> bytes:
        url = str(artifact.reference)
        account: HttpArtifactAccount | None = self.account(artifact, application, self.settings.http)
        auth: httpx.Auth | None = None
        headers: dict[str, str] = {}
        if account is not None:
            if not any(under(url, prefix) for prefix in account.url_prefixes):
                raise artifact_error(
                    artifact.describe(),
                    f"{url} is outside the URLs of account {account.name}; its credentials are not sent there",
                    ARTIFACT_ACCOUNT,
                )
            if account.username and account.password:
                auth = httpx.BasicAuth(account.username, account.password.read())
            elif account.token is not None:
                headers["Authorization"] = f"Bearer {account.token.read()}"
        return self.get(artifact, url, headers=headers, auth=auth).content

    def _api_account(self, artifact: Artifact, account: GitHubArtifactAccount | GitLabArtifactAccount | None) -> None:
        if account is not None and not under(str(artifact.reference), account.api_url):
            raise artifact_error(
                artifact.describe(),
                f"{artifact.reference} is not under {account.api_url} (account {account.name}); "
                "its token is not sent there",
                ARTIFACT_ACCOUNT,
            )

    @staticmethod
    def _ref_params(artifact: Artifact, default: str | None) -> dict[str, str]:
        query = dict(parse_qsl(urlsplit(str(artifact.reference)).query))
        ref = artifact.version or default
        return {} if "ref" in query or ref is None else {"ref": ref}

    def github_file(self, artifact: Artifact, application: str) -> bytes:
        account = self.account(artifact, application, self.settings.github)
        self._api_account(artifact, account)
        headers = {"Accept": "application/vnd.github.raw+json", "X-GitHub-Api-Version": "2022-11-28"}
        if account is not None and account.token is not None:
            headers["Authorization"] = f"Bearer {account.token.read()}"
        response = self.get(artifact, str(artifact.reference), headers=headers, params=self._ref_params(artifact, None))
        if "json" not in response.content_type or "raw" in response.content_type:
            return response.content
        # A server that ignored the raw media type answers the JSON form: content is base64.
        try:
            document = json.loads(response.content)
        except ValueError:
            return response.content
        if isinstance(document, list):
            raise artifact_error(artifact.describe(), "is a directory, not a file", ARTIFACT_INVALID)
        if isinstance(document, dict) and document.get("encoding") == "base64":
            return base64.b64decode(str(document.get("content", "")))
        return response.content

    def gitlab_file(self, artifact: Artifact, application: str) -> bytes:
        account = self.account(artifact, application, self.settings.gitlab)
        self._api_account(artifact, account)
        headers = {}
        if account is not None and account.token is not None:
            headers["PRIVATE-TOKEN"] = account.token.read()
        return self.get(
            artifact, str(artifact.reference), headers=headers, params=self._ref_params(artifact, "HEAD")
        ).content

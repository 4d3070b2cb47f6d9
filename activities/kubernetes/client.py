"""One account's Kubernetes clients, and the translation of API errors into activity outcomes.

Uses the official synchronous `kubernetes` client in thread-pool activities (the SDK's recommended
kind for blocking code): it is what kubectl-compatible tooling is tested against, and
`kubernetes_asyncio` would add a second client to keep in step for no gain in a thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.accounts import KubernetesAccount

T = TypeVar("T")

# Error types stages may name in RetryPolicy.non_retryable_error_types or catch by type.
UNAUTHORIZED = "KubernetesUnauthorized"
FORBIDDEN = "KubernetesForbidden"
NOT_FOUND = "KubernetesNotFound"
INVALID = "KubernetesInvalid"
CONFLICT = "KubernetesConflict"
UNAVAILABLE = "KubernetesUnavailable"
NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
NON_RETRYABLE = [UNAUTHORIZED, FORBIDDEN, NOT_FOUND, INVALID, NAMESPACE_NOT_ALLOWED]


def _status_message(exc: ApiException) -> str:
    """The `message` of the Status object the API server sent, else the HTTP reason."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "error")


class KubernetesAccountClient:
    def __init__(self, account: KubernetesAccount) -> None:
        self.account = account
        self.api_client = self._load()
        self.core = k8s.CoreV1Api(self.api_client)
        self.apps = k8s.AppsV1Api(self.api_client)
        self.batch = k8s.BatchV1Api(self.api_client)
        self.networking = k8s.NetworkingV1Api(self.api_client)
        self.autoscaling = k8s.AutoscalingV2Api(self.api_client)
        self.version = k8s.VersionApi(self.api_client)

    def _load(self) -> k8s.ApiClient:
        if self.account.in_cluster:
            configuration = k8s.Configuration()
            k8s_config.load_incluster_config(client_configuration=configuration)
            return k8s.ApiClient(configuration)
        loaded: k8s.ApiClient = k8s_config.new_client_from_config(
            config_file=str(self.account.kubeconfig), context=self.account.context
        )
        return loaded

    def close(self) -> None:
        self.api_client.close()

    @property
    def credentials_hint(self) -> str:
        if self.account.in_cluster:
            return "the pod's service account token"
        where = f"the kubeconfig at {self.account.kubeconfig}"
        return where + (f" (context {self.account.context})" if self.account.context else "")

    def check_namespace(self, namespace: str) -> None:
        if namespace not in self.account.namespaces:
            raise ApplicationError(
                f"account {self.account.name}: namespace {namespace!r} is not allowed "
                f"(allowed: {', '.join(self.account.namespaces)})",
                type=NAMESPACE_NOT_ALLOWED,
                non_retryable=True,
            )

    def call(self, fn: Callable[..., T], *args: Any, what: str = "", **kwargs: Any) -> T:
        """Call the API and turn failures into ApplicationErrors that say which account and what to do."""
        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            raise self.translate(exc, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApplicationError(
                f"account {self.account.name}: API server unreachable{_about(what)}: {exc}",
                type=UNAVAILABLE,
            ) from None

    def translate(self, exc: ApiException, what: str = "") -> ApplicationError:
        name = self.account.name
        status = exc.status or 0
        detail = _status_message(exc)
        if status == 401:
            return ApplicationError(
                f"account {name}: 401 Unauthorized — check {self.credentials_hint}",
                type=UNAUTHORIZED,
                non_retryable=True,
            )
        if status == 403:
            return ApplicationError(
                f"account {name}: 403 Forbidden{_about(what)}: {detail}", type=FORBIDDEN, non_retryable=True
            )
        if status == 404:
            return ApplicationError(
                f"account {name}: not found{_about(what)}: {detail}", type=NOT_FOUND, non_retryable=True
            )
        if status == 409:
            return ApplicationError(f"account {name}: conflict{_about(what)}: {detail}", type=CONFLICT)
        if status in (400, 422):
            return ApplicationError(
                f"account {name}: invalid{_about(what)}: {detail}", type=INVALID, non_retryable=True
            )
        # 429 and 5xx: the server may recover; Temporal retries with backoff and shows the attempts.
        return ApplicationError(f"account {name}: HTTP {status}{_about(what)}: {detail}", type=UNAVAILABLE)


def _about(what: str) -> str:
    return f" ({what})" if what else ""

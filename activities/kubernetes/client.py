"""One account's Kubernetes clients, and the translation of API errors into activity outcomes.

Uses the official synchronous `kubernetes` client in thread-pool activities (the SDK's recommended
kind for blocking code): it is what kubectl-compatible tooling is tested against, and
`kubernetes_asyncio` would add a second client to keep in step for no gain in a thread pool.

The kubeconfig is re-read when its file changes (size, mtime or inode), so an operator who fixes a
revoked token or a wrong context sees the account recover on the next call or health check, without
restarting the worker — clouddriver's classic trap is an account stuck on the credentials it read at
boot. A kubeconfig that cannot be loaded does not stop the worker either: every call, and the
account's health, then say which file is wrong and why.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
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
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "error")


@dataclass(frozen=True)
class _Loaded:
    """The API objects built from one reading of the kubeconfig."""

    api_client: k8s.ApiClient
    core: k8s.CoreV1Api
    apps: k8s.AppsV1Api
    batch: k8s.BatchV1Api
    networking: k8s.NetworkingV1Api
    autoscaling: k8s.AutoscalingV2Api
    version: k8s.VersionApi

    @classmethod
    def of(cls, api_client: k8s.ApiClient) -> _Loaded:
        return cls(
            api_client,
            k8s.CoreV1Api(api_client),
            k8s.AppsV1Api(api_client),
            k8s.BatchV1Api(api_client),
            k8s.NetworkingV1Api(api_client),
            k8s.AutoscalingV2Api(api_client),
            k8s.VersionApi(api_client),
        )


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class KubernetesAccountClient:
    def __init__(self, account: KubernetesAccount) -> None:
        self.account = account
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._loaded: _Loaded | None = None
        self._retired: list[k8s.ApiClient] = []
        self.load_error: str | None = None
        self._refresh()

    # The API objects, current with the kubeconfig file (see the module docstring).
    @property
    def api_client(self) -> k8s.ApiClient:
        return self._current().api_client

    @property
    def core(self) -> k8s.CoreV1Api:
        return self._current().core

    @property
    def apps(self) -> k8s.AppsV1Api:
        return self._current().apps

    @property
    def batch(self) -> k8s.BatchV1Api:
        return self._current().batch

    @property
    def networking(self) -> k8s.NetworkingV1Api:
        return self._current().networking

    @property
    def autoscaling(self) -> k8s.AutoscalingV2Api:
        return self._current().autoscaling

    @property
    def version(self) -> k8s.VersionApi:
        return self._current().version

    def _current(self) -> _Loaded:
        self._refresh()
        loaded = self._loaded
        if loaded is None:
            raise ApplicationError(
                f"account {self.account.name}: cannot load {self.credentials_hint}: {self.load_error}",
                type=UNAUTHORIZED,
                non_retryable=True,
            )
        return loaded

    def _refresh(self) -> None:
        """(Re)load the kubeconfig when its file changed since the last load (a stat per call)."""
        if self.account.in_cluster:
            if self._loaded is None:
                configuration = k8s.Configuration()
                k8s_config.load_incluster_config(client_configuration=configuration)
                self._loaded = _Loaded.of(k8s.ApiClient(configuration))
            return
        path = Path(str(self.account.kubeconfig))
        signature = _file_signature(path)
        if self._loaded is not None and signature == self._signature:
            return
        with self._lock:
            if self._loaded is not None and signature == self._signature:
                return
            try:
                api_client: k8s.ApiClient = k8s_config.new_client_from_config(
                    config_file=str(path), context=self.account.context
                )
            except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
                # Keep serving with what loaded before (if anything) while the file is half-written
                # or broken; say so in health. The next change of the file tries again.
                self.load_error = str(exc) or type(exc).__name__
                self._signature = signature
                return
            previous = self._loaded
            self._loaded = _Loaded.of(api_client)
            self._signature = signature
            self.load_error = None
            if previous is not None:
                # Calls in flight may still hold the previous client: close it one reload later.
                for old in self._retired:
                    old.close()
                self._retired = [previous.api_client]

    def close(self) -> None:
        for old in self._retired:
            old.close()
        self._retired = []
        if self._loaded is not None:
            self._loaded.api_client.close()

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

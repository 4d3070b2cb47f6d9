"""Which kinds an account's cluster serves, found through API discovery, and raw requests for any of them.

Uses the official client's `kubernetes.dynamic.DynamicClient` (the same discovery documents kubectl
reads). One `KindDiscovery` per account client, built on first use (so a worker starts even while the
cluster is down), its index kept for the life of the worker and rebuilt once when a kind is not in
it: a CustomResourceDefinition created earlier in the same stage is found on the next lookup. An
unknown kind fails naming the kind, its apiVersion and the account.

Objects travel as plain dicts in the API's JSON shape (what `stability.py` judges and what server-side
apply sends), never as the typed client's models, so any kind works the same way.
"""

from __future__ import annotations

import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource, ResourceList
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import KubernetesAccountClient

UNKNOWN_KIND = "UnknownKind"
Obj = dict[str, Any]


@dataclass(frozen=True)
class ServedKind:
    """One kind the cluster serves, at one group/version."""

    kind: str
    api_version: str  # group/version, or just the version for the core group
    plural: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str]
    resource: Resource

    def path(self, name: str | None = None, namespace: str | None = None, subresource: str | None = None) -> str:
        """The REST path of the collection, or of one object (and one of its subresources)."""
        path: str = self.resource.path(name=name, namespace=namespace if self.namespaced else None)
        return f"{path}/{subresource}" if subresource else path

    def describe(self, name: str, namespace: str) -> str:
        return f"{self.kind} {namespace}/{name}" if self.namespaced else f"{self.kind} {name}"


def _served(resource: Resource) -> ServedKind:
    return ServedKind(
        kind=resource.kind,
        api_version=resource.group_version,
        plural=resource.name,
        namespaced=bool(resource.namespaced),
        verbs=frozenset(resource.verbs or ()),
        subresources=frozenset(resource.subresources or {}),
        resource=resource,
    )


class KindDiscovery:
    """The kinds one account's cluster serves, and requests against any of them."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._dynamic: DynamicClient | None = None
        self._by_version_kind: dict[tuple[str, str], ServedKind] = {}
        self._by_name: dict[str, list[ServedKind]] = {}
        # The library keeps a discovery cache file; give each account its own, never shared between
        # accounts (two accounts on one server may see different kinds) nor left from earlier runs.
        self._cache_file = Path(tempfile.mkdtemp(prefix="gennaker-discovery-")) / f"{client.account.name}.json"

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = self.client.call(
                    DynamicClient, self.client.api_client, cache_file=str(self._cache_file), what="API discovery"
                )
            return self._dynamic

    def find(self, api_version: str | None, kind: str) -> ServedKind | None:
        """The served kind `kind` in `api_version` (or, without one, the preferred version of the kind,
        plural or short name `kind` as kubectl resolves `deployment`, `deploy`, `deployments`);
        discovery is refreshed once when it is not known yet."""
        for refreshed in (False, True):
            found = self._lookup(api_version, kind, refresh=refreshed)
            if found is not None:
                return found
        return None

    def kind(self, api_version: str | None, kind: str) -> ServedKind:
        """`find`, or a non-retryable failure naming the kind, its apiVersion and the account."""
        found = self.find(api_version, kind)
        if found is not None:
            return found
        raise self.unknown(api_version, kind)

    def unknown(self, api_version: str | None, kind: str) -> ApplicationError:
        version = f"apiVersion {api_version}" if api_version else "any apiVersion"
        return ApplicationError(
            f"account {self.client.account.name}: the cluster serves no kind {kind!r} in {version} "
            "(is its CustomResourceDefinition installed, or the apiVersion misspelled?)",
            type=UNKNOWN_KIND,
            non_retryable=True,
        )

    def _lookup(self, api_version: str | None, kind: str, refresh: bool) -> ServedKind | None:
        dynamic = self.dynamic
        with self._lock:
            if refresh or not self._by_name:
                if refresh:
                    self.client.call(dynamic.resources.invalidate_cache, what="API discovery")
                self._index(dynamic)
            if api_version:
                return self._by_version_kind.get((api_version, kind))
            candidates = self._by_name.get(kind.lower(), [])
            preferred = [c for c in candidates if c.resource.preferred] or candidates
            return preferred[0] if preferred else None

    def _index(self, dynamic: DynamicClient) -> None:
        """Every served kind, in discovery order (the server lists built-in groups first, as kubectl
        prefers them when a short name is ambiguous)."""
        groups: list[Any] = self.client.call(lambda: list(dynamic.resources), what="API discovery")
        by_version_kind: dict[tuple[str, str], ServedKind] = {}
        by_name: dict[str, list[ServedKind]] = {}
        for group in groups:
            for resource in group if isinstance(group, list) else [group]:
                if isinstance(resource, ResourceList) or not getattr(resource, "name", None):
                    continue
                served = _served(resource)
                by_version_kind.setdefault((served.api_version, served.kind), served)
                names = {served.kind.lower(), served.plural.lower(), (resource.singular_name or "").lower()}
                names |= {s.lower() for s in resource.short_names or ()}
                for name in names - {""}:
                    by_name.setdefault(name, []).append(served)
        self._by_version_kind, self._by_name = by_version_kind, by_name

    def request(self, method: str, path: str, *, what: str, body: Any = None, **params: Any) -> Obj:
        """One API request; the answer as a plain dict. Errors name the account and `what`."""
        raw: Callable[..., Any] = self.dynamic.request
        answer = self.client.call(raw, method, path, body=body, serializer=lambda _c, data: data, what=what, **params)
        return answer if isinstance(answer, dict) else {}


_DISCOVERIES: weakref.WeakKeyDictionary[KubernetesAccountClient, KindDiscovery] = weakref.WeakKeyDictionary()
_DISCOVERIES_LOCK = threading.Lock()


def discovery_for(client: KubernetesAccountClient) -> KindDiscovery:
    """The one discovery of `client`'s account, shared by every activity class built on that client."""
    with _DISCOVERIES_LOCK:
        found = _DISCOVERIES.get(client)
        if found is None:
            found = _DISCOVERIES[client] = KindDiscovery(client)
        return found

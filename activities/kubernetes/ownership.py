"""Who may touch which Kubernetes objects: the one check every manifest write passes before any side
effect, and the refusal to change another application's objects.

A manifest may name any namespace and cluster-scoped kinds (ClusterRole, CustomResourceDefinition,
Namespace), so what a stage is about to touch is known only after its manifests are parsed and
their kinds discovered. Every write path (apply, delete, patch, scale, undo) first builds the full
list of `ObjectToTouch` and calls `authorize_objects` once, before writing anything; then, per object
that already exists, `refuse_foreign` checks the `gennaker.io/application` annotation Gennaker
writes on everything it applies.

`authorize_objects` checks the objects against the application's grant for the account, which the
workflow stamped on the activity input (workflows/account_calls.py, activities/grants.py): namespaced
objects only in granted namespaces, cluster-scoped kinds only with `clusterScoped: true` (a
Namespace object also when its name is a granted namespace). The account's own namespace list is
checked beside it, by the caller. An input without a grant was scheduled before tenancy existed
(or without a policy): it is allowed, as it always was — the workflow refuses accounts it has no
grant for before scheduling anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.accounts import KubernetesAccount
from activities.grants import AccountGrant, matches

APPLICATION_ANNOTATION = "gennaker.io/application"
OWNED_BY_ANOTHER_APPLICATION = "OwnedByAnotherApplication"
NOT_AUTHORIZED = "ManifestNotAuthorized"


@dataclass(frozen=True)
class ObjectToTouch:
    """One object a stage is about to create, change or delete; `namespace` is "" when cluster-scoped."""

    apiVersion: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.apiVersion})"


def authorize_objects(
    account: KubernetesAccount,
    application: str,
    objects: Sequence[ObjectToTouch],
    grant: AccountGrant | None = None,
) -> None:
    """Raise (non-retryable, type `ManifestNotAuthorized`) if `application` may not touch one of
    `objects` in `account`. Called once per operation with every object, before any write; the
    single place that decides."""
    if grant is None:
        return
    for obj in objects:
        refusal = _refusal(grant, obj)
        if refusal is not None:
            raise ApplicationError(
                f"policy: application {application or '?'} may not touch {obj} in account {account.name}: "
                f"{refusal}. Nothing was written.",
                type=NOT_AUTHORIZED,
                non_retryable=True,
            )


def _refusal(grant: AccountGrant, obj: ObjectToTouch) -> str | None:
    granted = ", ".join(grant.namespaces) or "none"
    if obj.namespace:
        if matches(obj.namespace, grant.namespaces):
            return None
        return f"namespace {obj.namespace} is not granted (granted namespaces: {granted})"
    if grant.clusterScoped:
        return None
    if obj.kind == "Namespace" and matches(obj.name, grant.namespaces):
        return None
    return f"cluster-scoped kinds are not granted (rule: clusterScoped: false; granted namespaces: {granted})"


def refuse_foreign(live: dict[str, Any] | None, application: str, what: str, account: str) -> None:
    """Refuse to change `live` when Gennaker applied it for another application.

    Objects without the annotation (made by kubectl, a controller, an operator) are left to
    `authorize_objects`; an object with it belongs to that application alone."""
    if live is None or not application:
        return
    owner = ((live.get("metadata") or {}).get("annotations") or {}).get(APPLICATION_ANNOTATION)
    if owner and owner != application:
        raise ApplicationError(
            f"account {account}: {what} belongs to application {owner!r} (annotation "
            f"{APPLICATION_ANNOTATION}); application {application!r} may not change it. Nothing was written.",
            type=OWNED_BY_ANOTHER_APPLICATION,
            non_retryable=True,
        )

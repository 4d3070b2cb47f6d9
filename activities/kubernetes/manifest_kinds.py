"""What a manifest operation works on: the supported kinds and the client methods behind each, a
reference to one namespaced object, the annotations Gennaker writes, the error types that retrying
cannot fix, and the base every manifest activity class builds on (read, list, wait until gone).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import NON_RETRYABLE, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.waiting import WAIT_FAILED, WAIT_TIMEOUT, Verdict, wait_for_object

EXECUTION_ANNOTATION = "gennaker.io/execution-id"
STAGE_ANNOTATION = "gennaker.io/stage"
APPLICATION_ANNOTATION = "gennaker.io/application"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# Small payloads by design (Temporal warns at 256 KB); a manifest is fine, a bundle of charts is not.
MAX_MANIFEST_BYTES = 200_000

UNSUPPORTED_KIND = "UnsupportedKind"
MANIFEST_INVALID = "ManifestInvalid"
MANIFEST_TOO_LARGE = "ManifestTooLarge"
TARGET_NOT_FOUND = "ManifestTargetNotFound"
NON_RETRYABLE_MANIFEST = [
    *NON_RETRYABLE,
    WAIT_FAILED,
    WAIT_TIMEOUT,
    UNSUPPORTED_KIND,
    MANIFEST_INVALID,
    MANIFEST_TOO_LARGE,
    TARGET_NOT_FOUND,
]


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    api: str  # attribute of KubernetesAccountClient
    suffix: str  # the official client's method suffix: create_<suffix>, read_<suffix>, …
    aliases: tuple[str, ...] = ()


KINDS = (
    Kind("Deployment", "apps/v1", "apps", "namespaced_deployment", ("deploy",)),
    Kind("ReplicaSet", "apps/v1", "apps", "namespaced_replica_set", ("rs",)),
    Kind("Service", "v1", "core", "namespaced_service", ("svc",)),
    Kind("ConfigMap", "v1", "core", "namespaced_config_map", ("cm",)),
    Kind("Secret", "v1", "core", "namespaced_secret"),
    Kind("NetworkPolicy", "networking.k8s.io/v1", "networking", "namespaced_network_policy", ("netpol",)),
    Kind("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling", "namespaced_horizontal_pod_autoscaler", ("hpa",)),
    Kind("Job", "batch/v1", "batch", "namespaced_job"),
    Kind("Pod", "v1", "core", "namespaced_pod", ("po",)),
)
_BY_NAME = {n: k for k in KINDS for n in (k.kind.lower(), k.kind.lower() + "s", *k.aliases)}


def kind_of(name: object) -> Kind:
    found = _BY_NAME.get(str(name).lower())
    if found is None:
        raise ApplicationError(
            f"kind {name!r} is not supported; supported kinds: {', '.join(k.kind for k in KINDS)}",
            type=UNSUPPORTED_KIND,
            non_retryable=True,
        )
    return found


class ManifestRef(BaseModel):
    """One namespaced object; `label` is Spinnaker's manifestName form, e.g. 'deployment my-app'."""

    kind: str
    name: str
    namespace: str

    @property
    def label(self) -> str:
        k = kind_of(self.kind).kind
        return f"{k[0].lower()}{k[1:]} {self.name}"

    def __str__(self) -> str:
        return f"{kind_of(self.kind).kind} {self.namespace}/{self.name}"


class ManifestRefs(BaseModel):
    """Objects an operation touched; `states` is the last progress seen, `alreadyGone` what a delete found gone."""

    refs: list[ManifestRef] = Field(default_factory=list)
    states: dict[str, str] = Field(default_factory=dict)
    alreadyGone: list[ManifestRef] = Field(default_factory=list)


PATCH_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


def check_size(what: str, payload: Any) -> None:
    size = len(json.dumps(payload, default=str))
    if size > MAX_MANIFEST_BYTES:
        raise ApplicationError(
            f"{what} is {size // 1000} KB; the limit is {MAX_MANIFEST_BYTES // 1000} KB — split "
            "it, or keep large data out of the pipeline",
            type=MANIFEST_TOO_LARGE,
            non_retryable=True,
        )


class ManifestObjects:
    """One account's objects of any supported kind, reached through the official client's methods
    for that kind; what the apply and the delete/patch/undo activities share."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    def _op(self, kind: Kind, verb: str) -> Callable[..., Any]:
        fn: Callable[..., Any] = getattr(getattr(self.client, kind.api), f"{verb}_{kind.suffix}")
        return fn

    def _read(self, ref: ManifestRef, required: bool = False) -> Any:
        try:
            return self.client.call(self._op(kind_of(ref.kind), "read"), ref.name, ref.namespace, what=f"read {ref}")
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise
            if required:
                raise ApplicationError(
                    f"account {self.client.account.name}: {ref} does not exist",
                    type=TARGET_NOT_FOUND,
                    non_retryable=True,
                ) from None
            return None

    def wait_gone(self, ref: ManifestRef, timeout: float) -> None:
        """Watch until the object is gone (Foreground deletion keeps it until its dependents are)."""
        try:
            wait_for_object(
                self.client,
                self._op(kind_of(ref.kind), "list"),
                ref.namespace,
                ref.name,
                lambda _: Verdict(done=False, progress=f"{ref} is being deleted"),
                timeout,
                ref.kind,
            )
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise

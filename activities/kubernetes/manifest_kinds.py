"""What a manifest operation works on: kind names as people write them, a reference to one object
(namespaced or cluster-scoped), the annotations Gennaker writes, the error types that retrying cannot
fix, and the base every manifest activity class builds on (discover a kind, read, wait until gone).

Kinds are not a fixed table: any kind the account's cluster serves is resolved through API
discovery (`discovery.py`) inside the activity. What workflow code can check without a server is
only the spelling of a kind; `kind_of` also maps the common short names (`deploy`, `svc`, …) to the
kind, so `manifestName: "deploy web"` keeps working, and gives the default apiVersion of the kinds
Gennaker has always accepted without one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import NON_RETRYABLE, NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.discovery import UNKNOWN_KIND as UNKNOWN_KIND
from activities.kubernetes.discovery import KindDiscovery, ServedKind, discovery_for
from activities.kubernetes.ownership import APPLICATION_ANNOTATION as APPLICATION_ANNOTATION
from activities.kubernetes.ownership import NOT_AUTHORIZED, OWNED_BY_ANOTHER_APPLICATION
from activities.kubernetes.stability import stability
from activities.kubernetes.waiting import WAIT_FAILED, WAIT_TIMEOUT, Verdict, wait_for_resource

EXECUTION_ANNOTATION = "gennaker.io/execution-id"
STAGE_ANNOTATION = "gennaker.io/stage"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
# Every write Gennaker makes is recorded under this field manager (server-side apply and updates).
FIELD_MANAGER = "gennaker"
# Small payloads by design (Temporal warns at 256 KB); a manifest is fine, a bundle of charts is not.
MAX_MANIFEST_BYTES = 200_000

UNSUPPORTED_KIND = "UnsupportedKind"
MANIFEST_INVALID = "ManifestInvalid"
MANIFEST_TOO_LARGE = "ManifestTooLarge"
TARGET_NOT_FOUND = "ManifestTargetNotFound"
FIELD_CONFLICT = "ManifestFieldConflict"
NON_RETRYABLE_MANIFEST = [
    *NON_RETRYABLE,
    WAIT_FAILED,
    WAIT_TIMEOUT,
    UNSUPPORTED_KIND,
    UNKNOWN_KIND,
    MANIFEST_INVALID,
    MANIFEST_TOO_LARGE,
    TARGET_NOT_FOUND,
    FIELD_CONFLICT,
    OWNED_BY_ANOTHER_APPLICATION,
    NOT_AUTHORIZED,
]


@dataclass(frozen=True)
class Kind:
    """A kind as written in a pipeline; `api_version` is its default when a manifest omits it."""

    kind: str
    api_version: str | None = None
    aliases: tuple[str, ...] = ()


# Not a list of what is supported (discovery decides that): the spellings Spinnaker users write for
# common kinds (`manifestName: "deploy web"`), and the apiVersions Gennaker filled in before.
KINDS = (
    Kind("Deployment", "apps/v1", ("deploy",)),
    Kind("ReplicaSet", "apps/v1", ("rs",)),
    Kind("StatefulSet", "apps/v1", ("sts",)),
    Kind("DaemonSet", "apps/v1", ("ds",)),
    Kind("Service", "v1", ("svc",)),
    Kind("ConfigMap", "v1", ("cm",)),
    Kind("Secret", "v1"),
    Kind("Namespace", "v1", ("ns",)),
    Kind("ServiceAccount", "v1", ("sa",)),
    Kind("PersistentVolumeClaim", "v1", ("pvc",)),
    Kind("Pod", "v1", ("po",)),
    Kind("NetworkPolicy", "networking.k8s.io/v1", ("netpol",)),
    Kind("Ingress", "networking.k8s.io/v1", ("ing",)),
    Kind("HorizontalPodAutoscaler", "autoscaling/v2", ("hpa",)),
    Kind("PodDisruptionBudget", "policy/v1", ("pdb",)),
    Kind("Job", "batch/v1"),
    Kind("CronJob", "batch/v1", ("cj",)),
    Kind("CustomResourceDefinition", "apiextensions.k8s.io/v1", ("crd",)),
)
_BY_NAME = {n: k for k in KINDS for n in (k.kind.lower(), k.kind.lower() + "s", *k.aliases)}
_KIND_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,62}$")


def kind_of(name: object) -> Kind:
    """The kind `name` spells: a known short or plural name becomes its kind, any other well-formed
    name is taken as written (discovery in the activity decides whether the cluster serves it)."""
    text = str(name).strip()
    found = _BY_NAME.get(text.lower())
    if found is not None:
        return found
    if not _KIND_NAME.match(text):
        raise ApplicationError(
            f"kind {name!r} is not a Kubernetes kind name (letters and digits, e.g. Deployment, VirtualService)",
            type=UNSUPPORTED_KIND,
            non_retryable=True,
        )
    return Kind(text)


class ManifestRef(BaseModel):
    """One object; `label` is Spinnaker's manifestName form, e.g. 'deployment my-app'.
    `namespace` is "" for cluster-scoped kinds; `apiVersion` is filled in once discovery resolved it."""

    kind: str
    name: str
    namespace: str
    apiVersion: str | None = None

    @property
    def label(self) -> str:
        k = kind_of(self.kind).kind
        return f"{k[0].lower()}{k[1:]} {self.name}"

    def __str__(self) -> str:
        kind = kind_of(self.kind).kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


class ManifestRefs(BaseModel):
    """Objects an operation touched; `states` is the last progress seen (per object, why it is or is
    not yet stable), `alreadyGone` what a delete found gone, `stable` per object whether it is."""

    refs: list[ManifestRef] = Field(default_factory=list)
    states: dict[str, str] = Field(default_factory=dict)
    alreadyGone: list[ManifestRef] = Field(default_factory=list)
    stable: dict[str, bool] = Field(default_factory=dict)


PATCH_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
APPLY_PATCH = "application/apply-patch+yaml"


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
    """One account's objects of any kind the cluster serves, reached through discovery; what the
    apply and the delete/patch/scale/undo activities share."""

    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    @property
    def discovery(self) -> KindDiscovery:
        return discovery_for(self.client)

    def served(self, ref: ManifestRef) -> ServedKind:
        return self.discovery.kind(ref.apiVersion, kind_of(ref.kind).kind if not ref.apiVersion else ref.kind)

    def resolved(self, ref: ManifestRef) -> tuple[ManifestRef, ServedKind]:
        """`ref` with its kind's canonical name, apiVersion and scope (namespace "" when cluster-scoped)."""
        served = self.served(ref)
        namespace = ref.namespace if served.namespaced else ""
        return ManifestRef(kind=served.kind, name=ref.name, namespace=namespace, apiVersion=served.api_version), served

    def require_verb(self, ref: ManifestRef, served: ServedKind, verb: str) -> None:
        """Fail at once (not after retries of a 405) when the kind does not support `verb`."""
        if served.verbs and verb not in served.verbs:
            raise ApplicationError(
                f"account {self.client.account.name}: {served.kind} ({served.api_version}) does not support "
                f"{verb} (its verbs: {', '.join(sorted(served.verbs))}), so {ref} cannot be changed that way",
                type=UNSUPPORTED_KIND,
                non_retryable=True,
            )

    def check_scope(self, ref: ManifestRef) -> None:
        """The account's namespace list bounds namespaced objects and Namespace objects alike (a
        Namespace is the namespace itself: deleting one deletes everything in it)."""
        if ref.namespace:
            self.client.check_namespace(ref.namespace)
        elif ref.kind == "Namespace" and ref.apiVersion == "v1":
            self.client.check_namespace(ref.name)

    def read(self, ref: ManifestRef, served: ServedKind, required: bool = False) -> dict[str, Any] | None:
        try:
            return self.discovery.request("GET", served.path(ref.name, ref.namespace), what=f"read {ref}")
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
        ref, served = self.resolved(ref)
        try:
            wait_for_resource(
                self.discovery,
                served,
                ref.namespace,
                ref.name,
                lambda _: Verdict(done=False, progress=f"{ref} is being deleted"),
                timeout,
            )
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise


def verdict_of(obj: dict[str, Any]) -> Verdict:
    """The wait's view of `stability(obj)`."""
    judged = stability(obj)
    return Verdict(done=judged.stable, progress=judged.reason, failed=judged.reason if judged.failed else None)

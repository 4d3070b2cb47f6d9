"""Reading what a live workload is made of: Spinnaker's Find Artifacts From Resource (orca
`FindArtifactsFromResourceStage`, clouddriver's manifest `artifacts`): the object's manifest and one
`docker/image` artifact per distinct container image in its pod template (or a Pod's spec), init
containers included, so a later stage can bind exactly the images that run now.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts.binding import image_name
from activities.artifacts.model import Artifact
from activities.kubernetes.client import NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.manifests import MANIFEST_TOO_LARGE, MAX_MANIFEST_BYTES, TARGET_NOT_FOUND, ManifestRef

# Kind -> (client attribute, method suffix) of the workloads whose images can be read.
WORKLOADS = {
    "Deployment": ("apps", "namespaced_deployment"),
    "ReplicaSet": ("apps", "namespaced_replica_set"),
    "StatefulSet": ("apps", "namespaced_stateful_set"),
    "DaemonSet": ("apps", "namespaced_daemon_set"),
    "Job": ("batch", "namespaced_job"),
    "CronJob": ("batch", "namespaced_cron_job"),
    "Pod": ("core", "namespaced_pod"),
}
RESOURCE_UNSUPPORTED = "ResourceKindUnsupported"


class ResourceArtifacts(BaseModel):
    manifest: dict[str, Any] = Field(description="The live object, without managedFields and status")
    artifacts: list[Artifact]


def _pod_specs(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "Pod":
        yield spec
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template") or {}
    if isinstance(template.get("spec"), dict):
        yield template["spec"]


def images_of(manifest: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for spec in _pod_specs(manifest):
        for list_name in ("initContainers", "containers"):
            for container in spec.get(list_name) or []:
                image = container.get("image") if isinstance(container, dict) else None
                if isinstance(image, str) and image not in found:
                    found.append(image)
    return found


class ManifestResourceActivities:
    def __init__(self, client: KubernetesAccountClient) -> None:
        self.client = client

    def activities(self) -> list[Callable[..., Any]]:
        return [self.find_artifacts_from_resource]

    @activity.defn
    def find_artifacts_from_resource(self, ref: ManifestRef) -> ResourceArtifacts:
        where = WORKLOADS.get(ref.kind)
        if where is None:
            raise ApplicationError(
                f"cannot read images of a {ref.kind}; kinds with pods: {', '.join(WORKLOADS)}",
                type=RESOURCE_UNSUPPORTED,
                non_retryable=True,
            )
        self.client.check_namespace(ref.namespace)
        read = getattr(getattr(self.client, where[0]), f"read_{where[1]}")
        try:
            live = self.client.call(read, ref.name, ref.namespace, what=f"read {ref.kind} {ref.namespace}/{ref.name}")
        except ApplicationError as exc:
            if exc.type != NOT_FOUND:
                raise
            raise ApplicationError(
                f"account {self.client.account.name}: {ref.kind} {ref.namespace}/{ref.name} does not exist",
                type=TARGET_NOT_FOUND,
                non_retryable=True,
            ) from None
        manifest: dict[str, Any] = self.client.api_client.sanitize_for_serialization(live)
        manifest.pop("status", None)
        manifest.get("metadata", {}).pop("managedFields", None)
        if len(json.dumps(manifest)) > MAX_MANIFEST_BYTES:
            raise ApplicationError(
                f"{ref.kind} {ref.namespace}/{ref.name} is larger than {MAX_MANIFEST_BYTES // 1000} KB",
                type=MANIFEST_TOO_LARGE,
                non_retryable=True,
            )
        artifacts = [
            Artifact(type="docker/image", name=image_name(image), reference=image, version=_tag(image))
            for image in images_of(manifest)
        ]
        return ResourceArtifacts(manifest=manifest, artifacts=artifacts)


def _tag(image: str) -> str | None:
    if "@" in image:
        return image.split("@", 1)[1]
    name = image_name(image)
    return image[len(name) + 1 :] if len(image) > len(name) else None

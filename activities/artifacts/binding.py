"""Image binding: bound `docker/image` artifacts replace matching image references in manifests.

Spinnaker's rule (clouddriver `kubernetes/artifact/Replacer.java`, `dockerImage()` and
`podDockerImage()`): in every pod template found anywhere under a manifest
(`$..spec.template.spec`, so Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, a CronJob's
`jobTemplate` and custom resources shaped like them) and in a Pod's own `spec`, each container and
init container whose image *name* — the reference without its tag or digest — equals the artifact's
name gets the artifact's reference. `nginx`, `nginx:1.25` and `nginx@sha256:…` all match an
artifact named `nginx`.

One deliberate difference: Spinnaker strips everything after the last `:` to find the name, which
turns `localhost:5000/app` into `localhost`. Here a `:` counts as a tag separator only after the
last `/`, so registry ports survive.

Pure (no I/O): the stage can bind inline manifests in workflow code, and workers bind fetched ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from activities.artifacts.model import Artifact

CONTAINER_LISTS = ("containers", "initContainers")


class BoundImage(BaseModel):
    """One replacement, for stage outputs: where, and from what to what."""

    kind: str
    name: str
    container: str
    image: str
    boundTo: str


def image_name(reference: str) -> str:
    """`registry:5000/team/app:1.2@sha256:…` → `registry:5000/team/app`."""
    name = reference.split("@", 1)[0]
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name = name[:colon]
    return name


def _pod_specs(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every `spec.template.spec` mapping under `node` (any depth, bounded)."""
    if depth > 32 or not isinstance(node, dict):
        return
    spec = node.get("spec")
    if isinstance(spec, dict):
        template = spec.get("template")
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            yield template["spec"]
    for value in node.values():
        if isinstance(value, dict):
            yield from _pod_specs(value, depth + 1)
        elif isinstance(value, list):
            for item in value:
                yield from _pod_specs(item, depth + 1)


def bind_images(
    manifests: list[dict[str, Any]], artifacts: list[Artifact]
) -> tuple[list[dict[str, Any]], list[BoundImage]]:
    """Copies of `manifests` with images replaced by the bound `docker/image` artifacts, and what changed.
    Other artifact types are ignored; an artifact without a name is named after its reference."""
    images: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.type != "docker/image" or not artifact.reference:
            continue
        images.setdefault(artifact.name or image_name(artifact.reference), artifact.reference)
    if not images:
        return manifests, []
    bound: list[BoundImage] = []
    result = []
    for manifest in manifests:
        copied = copy.deepcopy(manifest)
        specs = list(_pod_specs(copied))
        if copied.get("kind") == "Pod" and isinstance(copied.get("spec"), dict):
            specs.append(copied["spec"])
        meta = copied["metadata"] if isinstance(copied.get("metadata"), dict) else {}
        for spec in specs:
            for list_name in CONTAINER_LISTS:
                containers = spec.get(list_name)
                if not isinstance(containers, list):
                    continue
                for container in containers:
                    if not isinstance(container, dict) or not isinstance(container.get("image"), str):
                        continue
                    wanted = images.get(image_name(container["image"]))
                    if wanted is None or wanted == container["image"]:
                        continue
                    bound.append(
                        BoundImage(
                            kind=str(copied.get("kind")),
                            name=str(meta.get("name")),
                            container=str(container.get("name")),
                            image=container["image"],
                            boundTo=wanted,
                        )
                    )
                    container["image"] = wanted
        result.append(copied)
    return result, bound

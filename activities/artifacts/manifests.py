"""Kubernetes manifests from an artifact: fetch, parse (multi-document YAML or JSON, `kind: List`
flattened), bind images. Used by the `fetch_manifests` activity and directly by activities that
should load manifests inside the worker (so large ones never travel through history).

YAML is parsed with the safe loader, and the parsed result is measured before anything walks it:
anchors and aliases are legal YAML, but a few lines of nested aliases ("billion laughs") expand to
billions of nodes, so expansion is capped at `MAX_NODES`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from activities.artifacts.binding import BoundImage, bind_images
from activities.artifacts.errors import ARTIFACT_INVALID, ARTIFACT_TOO_LARGE, artifact_error
from activities.artifacts.files import FileFetcher
from activities.artifacts.model import Artifact

MAX_NODES = 200_000
MAX_DOCUMENTS = 500
MANIFEST_TYPES = ("embedded/base64", "http/file", "github/file", "gitlab/file")


def _check_expansion(documents: list[Any], what: str) -> None:
    """Count nodes as a walker would see them (aliases expanded), stopping at the cap."""
    seen = 0
    stack: list[Any] = list(documents)
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise artifact_error(
                what, f"the manifests expand to more than {MAX_NODES} YAML nodes (nested aliases?)", ARTIFACT_TOO_LARGE
            )
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def parse_manifests(data: bytes, what: str) -> list[dict[str, Any]]:
    """Every object in `data` (YAML documents or JSON); `kind: List` items flattened; empty documents skipped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise artifact_error(what, "is not UTF-8 text", ARTIFACT_INVALID) from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise artifact_error(what, f"is not valid YAML: {str(exc)[:300]}", ARTIFACT_INVALID) from None
    if len(documents) > MAX_DOCUMENTS:
        raise artifact_error(
            what, f"holds {len(documents)} documents; the limit is {MAX_DOCUMENTS}", ARTIFACT_TOO_LARGE
        )
    _check_expansion(documents, what)
    objects: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        items = document.get("items") if isinstance(document, dict) and document.get("kind") == "List" else [document]
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not item.get("kind") or not item.get("apiVersion"):
                raise artifact_error(
                    what, f"document {index + 1} is not a Kubernetes object (kind, apiVersion)", ARTIFACT_INVALID
                )
            objects.append(item)
    if not objects:
        raise artifact_error(what, "holds no Kubernetes objects", ARTIFACT_INVALID)
    return objects


def load_manifests(
    fetcher: FileFetcher, artifact: Artifact, application: str, bind: list[Artifact] | None = None
) -> tuple[list[dict[str, Any]], list[BoundImage], str]:
    """(manifests with images bound, what was bound, sha256 of the fetched bytes)."""
    if artifact.type not in MANIFEST_TYPES:
        raise artifact_error(
            artifact.describe(),
            f"manifests come from {', '.join(MANIFEST_TYPES)} artifacts; "
            f"render a {artifact.type} with bakeManifest first",
            ARTIFACT_INVALID,
        )
    data = fetcher.fetch(artifact, application)
    manifests = parse_manifests(data, artifact.describe())
    bound_manifests, bound = bind_images(manifests, bind or [])
    return bound_manifests, bound, "sha256:" + hashlib.sha256(data).hexdigest()

"""Turning the accounts in a worker's config into per-account activity sets (one task queue each)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.accounts import ProvidedAccount
from workers.config import WorkerConfig


def artifact_activities(config: WorkerConfig) -> list[Callable[..., Any]]:
    """Artifact fetching and manifest baking, on one content store (bake and deploy must share it)."""
    from activities.artifacts.activities import ArtifactActivities
    from activities.artifacts.store import ContentStore, default_store_dir
    from activities.bake_manifest import BakeManifestActivities

    store = ContentStore(config.artifacts.store_dir or default_store_dir())
    settings = config.artifact_settings()
    return [
        *ArtifactActivities(settings, store).activities(),
        *BakeManifestActivities(settings, store).activities(),
    ]


def provide_accounts(config: WorkerConfig) -> list[ProvidedAccount]:
    """Build clients for every configured account. Provider modules are imported only when an
    account of their kind is configured, so a worker without Kubernetes needs no kube libraries."""
    provided: list[ProvidedAccount] = []
    if config.kubernetes:
        from activities.kubernetes import build_kubernetes_account

        # Every Kubernetes account worker also fetches manifest artifacts and renders Helm/Kustomize
        # for its stages, with the worker's artifact credentials and one shared render store.
        shared = artifact_activities(config)
        provided += [build_kubernetes_account(account, extra_activities=shared) for account in config.kubernetes]
    if config.registries:
        from activities.registry import build_registry_account

        provided += [build_registry_account(account, config.egress, config.bake) for account in config.registries]
    return provided

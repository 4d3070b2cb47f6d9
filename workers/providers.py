"""Turning the accounts in a worker's config into per-account activity sets (one task queue each)."""

from __future__ import annotations

from activities.accounts import ProvidedAccount
from workers.config import WorkerConfig


def provide_accounts(config: WorkerConfig) -> list[ProvidedAccount]:
    """Build clients for every configured account. Provider modules are imported only when an
    account of their kind is configured, so a worker without Kubernetes needs no kube libraries."""
    provided: list[ProvidedAccount] = []
    if config.kubernetes:
        from activities.kubernetes import build_kubernetes_account

        provided += [build_kubernetes_account(account) for account in config.kubernetes]
    if config.registries:
        from activities.registry import build_registry_account

        provided += [build_registry_account(account, config.egress, config.bake) for account in config.registries]
    return provided

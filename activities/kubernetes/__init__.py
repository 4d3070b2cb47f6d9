"""Kubernetes provider (Spinnaker's clouddriver): server groups, traffic, manifests, jobs.

`build_kubernetes_account(account)` gives the worker one account's activities, bound to clients
built from that account's credentials; only the worker serving `k8s-<account>` holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.accounts import KubernetesAccount, ProvidedAccount
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.health import check_kubernetes_account


def account_activities(client: KubernetesAccountClient) -> list[Callable[..., Any]]:
    """Every activity a Kubernetes account's worker runs, bound to `client`."""
    return []


def build_kubernetes_account(account: KubernetesAccount) -> ProvidedAccount:
    client = KubernetesAccountClient(account)
    return ProvidedAccount(
        name=account.name,
        kind="kubernetes",
        queue=account.queue,
        activities=account_activities(client),
        check_health=lambda: check_kubernetes_account(client),
        close=client.close,
    )

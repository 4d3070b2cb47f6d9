"""Kubernetes provider (Spinnaker's clouddriver): server groups, traffic, manifests, jobs.

`build_kubernetes_account(account)` gives the worker one account's activities, bound to clients
built from that account's credentials; only the worker serving `k8s-<account>` holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.accounts import KubernetesAccount, ProvidedAccount
from activities.kubernetes.client import KubernetesAccountClient
from activities.kubernetes.clusters import ClusterActivities
from activities.kubernetes.firewalls import FirewallActivities
from activities.kubernetes.health import check_kubernetes_account
from activities.kubernetes.jobs import KubernetesJobActivities
from activities.kubernetes.manifest_resources import ManifestResourceActivities
from activities.kubernetes.manifest_traffic import ManifestTrafficActivities
from activities.kubernetes.manifests import KubernetesManifestActivities
from activities.kubernetes.servergroups import ServerGroupActivities
from activities.kubernetes.traffic import TrafficActivities


def account_activities(client: KubernetesAccountClient) -> list[Callable[..., Any]]:
    """Every activity a Kubernetes account's worker runs, bound to `client`."""
    groups, traffic = ServerGroupActivities(client), TrafficActivities(client)
    firewalls, clusters = FirewallActivities(client), ClusterActivities(client)
    return [
        groups.reserve_server_group_version,
        groups.create_server_group,
        groups.wait_server_group_healthy,
        groups.resize_server_group,
        groups.destroy_server_group,
        groups.set_server_group_scaling,
        traffic.set_server_group_traffic,
        traffic.switch_server_group_traffic,
        traffic.quick_patch_server_group,
        firewalls.upsert_security_group,
        clusters.describe_cluster,
        clusters.list_application_clusters,
        *KubernetesManifestActivities(client).activities(),
        *KubernetesJobActivities(client).activities(),
        *ManifestTrafficActivities(client).activities(),
        *ManifestResourceActivities(client).activities(),
    ]


def build_kubernetes_account(
    account: KubernetesAccount, extra_activities: Sequence[Callable[..., Any]] = ()
) -> ProvidedAccount:
    """The account's activity set; `extra_activities` (artifact fetch, manifest bake) share its queue."""
    client = KubernetesAccountClient(account)
    return ProvidedAccount(
        name=account.name,
        kind="kubernetes",
        queue=account.queue,
        activities=[*account_activities(client), *extra_activities],
        check_health=lambda: check_kubernetes_account(client),
        close=client.close,
    )

"""Account health: reachable, authenticated, namespaces readable — what GET /accounts shows.

A 401 names the account and the kubeconfig (Spinnaker's clouddriver only logged `401 Unauthorized`);
a 403 carries the API server's own message, which names the user, the verb and the resource. Each
check goes through the client's current kubeconfig, so fixing the file heals the account at the next
check without a worker restart.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountHealth
from activities.kubernetes.client import KubernetesAccountClient


def check_kubernetes_account(client: KubernetesAccountClient) -> AccountHealth:
    account = client.account
    details: dict[str, str] = {"namespaces": ",".join(account.namespaces)}
    if account.kubeconfig is not None:
        details["kubeconfig"] = str(account.kubeconfig)
    if account.simulated:
        details["simulation"] = "kubesim (a simulated Kubernetes API, not a real cluster)"

    def health(reachable: bool, authenticated: bool, error: str | None) -> AccountHealth:
        return AccountHealth(
            name=account.name,
            kind="kubernetes",
            taskQueue=account.queue,
            healthy=reachable and authenticated and error is None,
            reachable=reachable,
            authenticated=authenticated,
            lastError=error,
            details=details,
            checkedAt=datetime.now(UTC),
        )

    try:
        version_api = client.version
    except ApplicationError as exc:  # the kubeconfig cannot be loaded at all
        return health(False, False, str(exc.message))
    if client.load_error is not None:
        # Still serving with the kubeconfig read before; the file as it is now does not load.
        details["kubeconfigError"] = (
            f"{account.kubeconfig} does not load (using the previous reading): {client.load_error}"
        )
    try:
        version = version_api.get_code(_request_timeout=5)
        details["serverVersion"] = str(version.git_version)
    except ApiException as exc:
        if exc.status == 401:
            return health(True, False, str(client.translate(exc).message))
        return health(True, True, str(client.translate(exc, "GET /version").message))
    except Exception as exc:  # unreachable: connection refused, DNS, TLS
        return health(False, False, f"account {account.name}: API server unreachable: {exc}")
    for namespace in account.namespaces:
        try:
            client.core.list_namespaced_pod(namespace, limit=1, _request_timeout=5)
        except ApiException as exc:
            authenticated = exc.status != 401
            return health(True, authenticated, str(client.translate(exc, f"list pods in {namespace}").message))
    return health(True, True, None)

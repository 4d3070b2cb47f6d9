"""Clusters of an application, read live through the account workers (GET /applications/{app}/clusters)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import AccessDep, SettingsDep, TemporalClientDep
from api.errors import ApiError
from api.policy import Permission
from api.routers.pipelines import AppName
from core.directory import reported_accounts
from workflows.reads import CLUSTER_READ_WORKFLOW, AccountReadError, ClusterReadInput, ClusterReadResult

router = APIRouter(tags=["clusters"])
READ_DEADLINE = timedelta(seconds=40)


class ServerGroupSummary(BaseModel):
    name: str
    version: int | None
    images: list[str]
    imageIds: list[str | None]
    desired: int
    ready: int
    enabled: bool
    loadBalancers: list[str]
    securityGroups: list[str]
    createdAt: str | None = None
    executionId: str | None = None


class ClusterSummary(BaseModel):
    account: str
    namespace: str
    name: str
    simulated: bool = Field(default=False, description="The account is kubesim, not a real cluster")
    serverGroups: list[ServerGroupSummary]


class ClustersResponse(BaseModel):
    application: str
    clusters: list[ClusterSummary]
    errors: list[AccountReadError] = Field(default_factory=list, description="Accounts that could not be read")


@router.get(
    "/applications/{application}/clusters",
    response_model=ClustersResponse,
    summary="Clusters and server groups of an application, read live from the Kubernetes accounts",
)
async def list_clusters(
    application: AppName,
    client: TemporalClientDep,
    settings: SettingsDep,
    access: AccessDep,
    account: Annotated[list[str] | None, Query(description="Only these accounts (default: all reported)")] = None,
    namespace: Annotated[str | None, Query()] = None,
) -> ClustersResponse:
    access.require(application, Permission.READ)
    reported = {v.name: v.taskQueue for v in await reported_accounts(client) if v.kind == "kubernetes" and not v.stale}
    unknown = sorted(set(account or []) - set(reported))
    if unknown:
        # Asking a queue nobody polls would only time out: say so at once instead.
        raise ApiError(
            404,
            "unknown_account",
            f"no live worker reports Kubernetes account(s) {', '.join(unknown)} (see GET /accounts)",
        )
    queues = {name: reported[name] for name in account} if account else reported
    if not queues:
        return ClustersResponse(application=application, clusters=[])
    result: ClusterReadResult = await client.execute_workflow(
        CLUSTER_READ_WORKFLOW,
        ClusterReadInput(application=application, accounts=queues, namespace=namespace),
        id=f"read-clusters.{application}.{uuid.uuid4().hex[:12]}",
        task_queue=settings.task_queue,
        result_type=ClusterReadResult,
        execution_timeout=READ_DEADLINE,
        static_summary=f"Read clusters of {application}",
    )
    # An account whose worker just went away is the account's problem, not the request's: answer what
    # could be read and name the rest in `errors` (also when nothing could be read), as a dashboard
    # listing several accounts needs; a 5xx would hide the accounts that did answer.
    clusters = [
        ClusterSummary(
            account=found.account,
            namespace=cluster.namespace,
            name=cluster.name,
            simulated=found.simulated,
            serverGroups=[
                ServerGroupSummary(
                    name=g.name,
                    version=g.version,
                    images=[i.image for i in g.images],
                    imageIds=[i.imageId for i in g.images],
                    desired=g.desired,
                    ready=g.ready,
                    enabled=g.enabled,
                    loadBalancers=g.loadBalancers,
                    securityGroups=g.securityGroups,
                    createdAt=g.createdAt.isoformat() if g.createdAt else None,
                    executionId=g.executionId,
                )
                for g in cluster.serverGroups
            ],
        )
        for found in result.accounts
        for cluster in found.clusters
    ]
    return ClustersResponse(application=application, clusters=clusters, errors=result.errors)

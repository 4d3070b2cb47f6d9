"""Accounts as the workers report them: which exist, where they run, whether they work."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import TemporalClientDep
from api.directory import reported_accounts
from workflows.accounts import AccountView

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("", response_model=list[AccountView], summary="Kubernetes and registry accounts with health")
async def list_accounts(client: TemporalClientDep) -> list[AccountView]:
    return await reported_accounts(client)

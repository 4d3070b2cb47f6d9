"""Accounts as the workers report them: which exist, where they run, whether they work."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from api.deps import AccessDep, SettingsDep, TemporalClientDep
from api.policy import Permission
from core.directory import reported_accounts
from workflows.accounts import AccountView

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.get("", response_model=list[AccountView], summary="Kubernetes and registry accounts with health")
async def list_accounts(client: TemporalClientDep, settings: SettingsDep, access: AccessDep) -> list[AccountView]:
    access.require_somewhere(Permission.READ, "the account list")
    return await reported_accounts(client, timedelta(seconds=settings.account_forget_after_seconds))

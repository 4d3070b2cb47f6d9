"""What the workflows know about accounts: their task-queue names and the health report workers
send. Pure models, used by workflow code and by the workers alike (activities/accounts.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

ACCOUNT_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


def kubernetes_task_queue(account: str) -> str:
    return f"k8s-{account}"


def registry_task_queue(account: str) -> str:
    return f"registry-{account}"


class AccountHealth(BaseModel):
    name: str
    kind: str = Field(description="kubernetes | registry")
    taskQueue: str
    healthy: bool
    reachable: bool
    authenticated: bool
    lastError: str | None = None
    details: dict[str, str] = Field(default_factory=dict, description="e.g. server version, namespaces")
    checkedAt: datetime

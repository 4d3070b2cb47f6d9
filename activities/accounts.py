"""Accounts a worker holds credentials for, and the health report each one produces.

Declared in the worker's gennaker.yaml only. Secrets are read from files or environment variables
when needed (`secret()`), never stored in these models' dumps, never sent to the gateway.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The queue names and the health model are what the workflows use: they live with the workflows.
from workflows.account_model import ACCOUNT_NAME, AccountHealth, kubernetes_task_queue, registry_task_queue


class SecretRef(BaseModel):
    """Where a secret lives: a file (mounted secret) or an environment variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of `file` or `env`")
        return self

    def read(self) -> str:
        if self.file is not None:
            return self.file.read_text().strip()
        value = os.environ.get(str(self.env))
        if value is None:
            raise LookupError(f"environment variable {self.env} is not set")
        return value

    def describe(self) -> str:
        return f"file {self.file}" if self.file is not None else f"env ${self.env}"


class KubernetesAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=ACCOUNT_NAME)
    kubeconfig: Path | None = Field(default=None, description="kubeconfig file; None with in_cluster")
    context: str | None = None
    in_cluster: bool = Field(default=False, description="Use the pod's service account")
    namespaces: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    task_queue: str | None = Field(default=None, description="Default k8s-<name>")
    simulated: bool = Field(default=False, description="kubesim, labelled as a simulation everywhere")

    @model_validator(mode="after")
    def _source(self) -> KubernetesAccount:
        if self.in_cluster == (self.kubeconfig is not None):
            raise ValueError(f"account {self.name}: give `kubeconfig` or `in_cluster: true` (exactly one)")
        return self

    @property
    def queue(self) -> str:
        return self.task_queue or kubernetes_task_queue(self.name)


class RegistryAccount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=ACCOUNT_NAME)
    address: str = Field(description="host:port of the registry, e.g. registry.example.com or 127.0.0.1:5000")
    insecure: bool = Field(default=False, description="Plain HTTP (a local registry)")
    username: str | None = None
    password: SecretRef | None = None
    repositories: list[str] = Field(default_factory=list, description="Repositories to index for Find Image")
    docker_host: str | None = Field(default=None, description="Docker engine for bakes; default $DOCKER_HOST")
    task_queue: str | None = Field(default=None, description="Default registry-<name>")

    @property
    def queue(self) -> str:
        return self.task_queue or registry_task_queue(self.name)


@dataclass
class ProvidedAccount:
    """What a provider module gives the worker for one account: its queue, its activities (bound
    to the account's clients), a health check, and how to release its clients."""

    name: str
    kind: str
    queue: str
    activities: Sequence[Callable[..., Any]]
    check_health: Callable[[], AccountHealth]
    close: Callable[[], None] = field(default=lambda: None)


__all__ = [
    "ACCOUNT_NAME",
    "AccountHealth",
    "KubernetesAccount",
    "ProvidedAccount",
    "RegistryAccount",
    "SecretRef",
    "kubernetes_task_queue",
    "registry_task_queue",
]

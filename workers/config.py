"""Worker configuration: `gennaker.yaml` (path in GENNAKER_CONFIG), overridable by GENNAKER_* env.

Credentials for accounts live here and only here (files or env, never requests or workflow history).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from activities.accounts import KubernetesAccount, RegistryAccount
from activities.artifacts.settings import ArtifactAccounts
from activities.bake import BakeSettings
from activities.egress import EgressPolicy
from activities.jenkins import JenkinsMaster
from activities.notify import NotificationSettings
from activities.script import ScriptSettings
from core.settings import ConfigError, GennakerSettings

__all__ = ["ConfigError", "WorkerConfig", "load_worker_config"]

_log = logging.getLogger(__name__)


class WorkerConfig(GennakerSettings):
    """A misspelt key is an error here: it would otherwise leave an account or a channel unconfigured."""

    model_config = SettingsConfigDict(env_prefix="GENNAKER_", extra="forbid")

    activity_threads: int = Field(default=32, ge=1, le=512)
    sticky_timeout_seconds: float = Field(
        default=5, gt=0, description="How soon another worker takes over a crashed worker's cached workflows"
    )
    serve_pipelines: bool = Field(default=True, description="Poll the pipeline task queue (workflows)")
    health_interval_seconds: float = Field(default=30, gt=0, description="How often accounts are checked")
    gateway_url: str | None = Field(
        default=None,
        description="The gateway's base URL as people reach it (https://gennaker.example.com): notifications "
        "link to its console page of the execution; without it they link to the Temporal UI",
    )
    kubernetes: list[KubernetesAccount] = Field(default_factory=list)
    registries: list[RegistryAccount] = Field(default_factory=list)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    jenkins: list[JenkinsMaster] = Field(default_factory=list)
    scripts: ScriptSettings = Field(default_factory=ScriptSettings)
    artifacts: ArtifactAccounts = Field(
        default_factory=ArtifactAccounts, description="Artifact accounts and the render store"
    )
    egress: EgressPolicy = Field(
        default_factory=EgressPolicy,
        description="Where stages' outbound requests may go (webhook, Jenkins, bake, notifications, artifact "
        "fetches): global addresses only unless allow-listed by host, CIDR or URL prefix (activities/egress.py)",
    )
    bake: BakeSettings = Field(default_factory=BakeSettings, description="Where `path` build contexts may lie")
    auth_policy_file: Path | None = Field(
        default=None,
        description="The gateway's access policy: runs started by `pipeline` triggers act as their pipeline's "
        "serviceAccount with its application's grants (activities/triggers.py); none: single-tenant, open grants",
    )

    @model_validator(mode="after")
    def _unique_accounts(self) -> WorkerConfig:
        named: tuple[tuple[str, list[Any]], ...] = (
            ("kubernetes", self.kubernetes),
            ("registries", self.registries),
            ("jenkins", self.jenkins),
        )
        for kind, accounts in named:
            names = [a.name for a in accounts]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{kind}: duplicate account names {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _deprecated_artifacts_egress(self) -> WorkerConfig:
        if "egress" in self.artifacts.model_fields_set:
            _log.warning(
                "artifacts.egress is deprecated: move its allow-lists into the top-level `egress:` section, "
                "which every stage's outbound requests obey (docs/artifacts.md)"
            )
        return self

    def artifact_settings(self) -> ArtifactAccounts:
        """The `artifacts:` section under the worker's one egress policy. A config that still sets the
        deprecated `artifacts.egress` keeps it for artifacts, so upgrading changes no fetch's outcome."""
        if "egress" in self.artifacts.model_fields_set:
            return self.artifacts
        return self.artifacts.model_copy(update={"egress": self.egress})


def load_worker_config(path: Path | None = None, **overrides: Any) -> WorkerConfig:
    """Read `path` (or $GENNAKER_CONFIG, or ./gennaker.yaml if present); env over YAML, overrides over both."""
    return WorkerConfig.load(path, **overrides)

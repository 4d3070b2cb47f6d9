"""Worker configuration: `gennaker.yaml` (path in GENNAKER_CONFIG), overridable by GENNAKER_* env.

Credentials for accounts live here and only here (files or env, never requests or workflow history).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from activities.accounts import KubernetesAccount, RegistryAccount
from activities.jenkins import JenkinsMaster
from activities.notify import NotificationSettings
from activities.script import ScriptSettings


class ConfigError(ValueError):
    """A configuration file that cannot be used, with the reason people need to fix it."""


class WorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENNAKER_", extra="forbid")

    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend host:port")
    temporal_namespace: str = "default"
    task_queue: str = Field(default="gennaker", description="Queue for pipeline workflows and generic activities")
    database_url: str = Field(default="sqlite:///.data/gennaker.db", description="Saved-pipeline store (read)")
    activity_threads: int = Field(default=32, ge=1, le=512)
    sticky_timeout_seconds: float = Field(
        default=5, gt=0, description="How soon another worker takes over a crashed worker's cached workflows"
    )
    codec_keys_file: Path | None = Field(default=None, description="AES-GCM payload keys (api/codec.py)")
    serve_pipelines: bool = Field(default=True, description="Poll the pipeline task queue (workflows)")
    health_interval_seconds: float = Field(default=30, gt=0, description="How often accounts are checked")
    kubernetes: list[KubernetesAccount] = Field(default_factory=list)
    registries: list[RegistryAccount] = Field(default_factory=list)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    jenkins: list[JenkinsMaster] = Field(default_factory=list)
    scripts: ScriptSettings = Field(default_factory=ScriptSettings)
    temporal_ui_url: str | None = Field(default=None, description="Web UI base, for links in notifications")

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (the YAML file's content, CLI flags) win over the environment.
        return (init_settings, env_settings)


def load_worker_config(path: Path | None = None, **overrides: Any) -> WorkerConfig:
    """Read `path` (or $GENNAKER_CONFIG, or ./gennaker.yaml if present) and apply overrides."""
    candidate = path or (Path(os.environ["GENNAKER_CONFIG"]) if os.environ.get("GENNAKER_CONFIG") else None)
    if candidate is None and Path("gennaker.yaml").exists():
        candidate = Path("gennaker.yaml")
    data: dict[str, Any] = {}
    if candidate is not None:
        try:
            loaded = yaml.safe_load(candidate.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{candidate}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{candidate}: must be a YAML mapping")
        data = {k.replace("-", "_"): v for k, v in loaded.items()}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return WorkerConfig(**data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{candidate or 'worker config'}: {problems}") from None

"""Gateway settings (environment, prefix GENNAKER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENNAKER_", extra="ignore")

    temporal_address: str = Field(default="127.0.0.1:7233", description="Temporal frontend host:port")
    temporal_namespace: str = "default"
    task_queue: str = Field(default="gennaker", description="Task queue of the pipeline workers")
    database_url: str = Field(default="sqlite:///.data/gennaker.db", description="Saved-pipeline store")
    api_host: str = "127.0.0.1"
    api_port: int = 8084
    temporal_ui_url: str = Field(default="http://127.0.0.1:8233", description="For links to executions")

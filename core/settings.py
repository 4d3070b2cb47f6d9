"""Settings the gateway and the workers share, declared once.

Sources, strongest first: explicit arguments (CLI flags, the dev stack), `GENNAKER_*` environment
variables, the YAML file (`--config`, else $GENNAKER_CONFIG, else ./gennaker.yaml when present),
then defaults. The gateway (`api/settings.py`) and the worker (`workers/config.py`) each extend
`GennakerSettings` with what only they need, and may read the same YAML file.

The Temporal connection itself comes from Temporal's own client configuration (a TOML profile and
`TEMPORAL_*` variables, see core/temporal.py); `temporal_address` / `temporal_namespace` here only
override it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_FILE_ENV = "GENNAKER_CONFIG"
DEFAULT_CONFIG_FILE = Path("gennaker.yaml")
DEFAULT_TASK_QUEUE = "gennaker"

# The YAML file of the settings being built: pydantic-settings asks for sources per class, not per
# instance, so the path travels beside the call (a context variable is safe across threads/tasks).
_yaml_file: ContextVar[Path | None] = ContextVar("gennaker_yaml_file", default=None)


class ConfigError(ValueError):
    """A configuration that cannot be used, with the reason people need to fix it."""


class _YamlSource(YamlConfigSettingsSource):
    """The YAML source, refusing files that are not a mapping and accepting `task-queue` for `task_queue`."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{file_path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file_path}: must be a YAML mapping")
        return {str(key).replace("-", "_"): value for key, value in data.items()}


class GennakerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENNAKER_", extra="ignore")

    temporal_profile: str | None = Field(
        default=None,
        description="Profile in Temporal's client config file (TEMPORAL_CONFIG_FILE); default TEMPORAL_PROFILE",
    )
    temporal_address: str | None = Field(
        default=None, description="Overrides the profile's host:port (default 127.0.0.1:7233)"
    )
    temporal_namespace: str | None = Field(default=None, description="Overrides the profile's namespace")
    task_queue: str = Field(default=DEFAULT_TASK_QUEUE, description="Task queue of the pipeline workflows")
    database_url: str = Field(default="sqlite:///.data/gennaker.db", description="Saved-pipeline store")
    codec_keys_file: Path | None = Field(default=None, description="AES-GCM payload keys (core/codec.py)")
    temporal_ui_url: str = Field(default="http://127.0.0.1:8233", description="Web UI base, for links")
    min_cron_interval_seconds: int = Field(
        default=60,
        ge=1,
        description="Shortest `interval` a cron trigger may ask for: each schedule starts runs on the shared "
        "pipeline workers, so one tenant's `1s` triggers would crowd out everyone else's executions",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _yaml_file.get()
        if path is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, _YamlSource(settings_cls, yaml_file=path))

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Self:
        """Settings from `path` (or $GENNAKER_CONFIG, or ./gennaker.yaml if present), the environment
        and `overrides` (None values are ignored); ConfigError names every field that is wrong."""
        chosen = config_file(path)
        if chosen is not None and not chosen.is_file():
            raise ConfigError(f"{chosen}: no such configuration file")
        try:
            with _reading(chosen):
                return cls(**{key: value for key, value in overrides.items() if value is not None})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{chosen or 'configuration'}: {problems}") from None


def config_file(path: Path | None = None) -> Path | None:
    if path is not None:
        return path
    if os.environ.get(CONFIG_FILE_ENV):
        return Path(os.environ[CONFIG_FILE_ENV])
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


@contextmanager
def _reading(path: Path | None) -> Iterator[None]:
    token = _yaml_file.set(path)
    try:
        yield
    finally:
        _yaml_file.reset(token)

"""Telemetry settings, read the same way by the gateway and every worker (env prefix GENNAKER_).

Everything is off by default except the gateway's `/metrics` route: a worker exposes the Temporal
SDK's metrics (and ours) only when `GENNAKER_METRICS_ADDRESS` names where to listen, and traces are
exported only when `GENNAKER_OTLP_ENDPOINT` names a collector.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelemetrySettings(BaseSettings):
    # extra="ignore": the other GENNAKER_* variables belong to the gateway's and worker's settings.
    model_config = SettingsConfigDict(env_prefix="GENNAKER_", extra="ignore")

    metrics_address: str | None = Field(
        default=None,
        description="Worker: host:port for the SDK's Prometheus endpoint (/metrics), e.g. 127.0.0.1:9464. Off if unset",
        pattern=r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$",
    )
    metrics_token: str | None = Field(
        default=None, description="Gateway: when set, GET /metrics requires `Authorization: Bearer <token>`"
    )
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces. Off if unset"
    )
    service_name: str = Field(default="gennaker", description="OpenTelemetry service.name of this process")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")
    log_level: str = "INFO"
    max_label_values: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description="Distinct application/pipeline label combinations per metric before the rest count as `_other`",
    )


class TelemetryConfigError(ValueError):
    """A GENNAKER_* telemetry variable that cannot be used; the message names it."""


def load_telemetry_settings() -> TelemetrySettings:
    """Settings from the environment, or TelemetryConfigError naming each bad variable."""
    try:
        return TelemetrySettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"GENNAKER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise TelemetryConfigError(problems) from None

"""Gateway settings: the shared ones (core/settings.py) plus HTTP, authentication and trigger secrets."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field

from core.settings import GennakerSettings


class GatewaySettings(GennakerSettings):
    """Unknown keys are ignored, so the gateway can read the workers' YAML file too."""

    api_host: str = "127.0.0.1"
    api_port: int = 8084
    auth_policy_file: Path | None = Field(
        default=None, description="Who may do what (api/policy.py); without one only nobody may"
    )
    auth_disabled: bool = Field(default=False, description="DANGEROUS: no authentication at all (local trials only)")
    oidc_issuer: str | None = Field(default=None, description="Accept JWTs from this issuer (iss)")
    oidc_audience: str | None = Field(default=None, description="Required aud of those JWTs")
    oidc_jwks_file: Path | None = Field(default=None, description="The issuer's JWKS (public keys), as a file")
    oidc_subject_claim: str = "sub"
    oidc_groups_claim: str = "groups"
    codec_cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call /codec (the Temporal UI); default its URL"
    )
    account_forget_after_seconds: float = Field(
        default=3600, gt=0, description="GET /accounts leaves out reports of workers gone longer than this"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body (413 above it); per-route limits below"
    )
    codec_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, gt=0, description="Largest /codec request (the Temporal UI sends whole histories)"
    )
    codec_max_payloads: int = Field(default=2000, gt=0, description="Most payloads in one /codec request")
    trigger_secrets_file: Path | None = Field(
        default=None,
        description="YAML mapping of trigger secret names to values; GENNAKER_TRIGGER_SECRET_<NAME> also works",
    )

    def trigger_secret(self, name: str) -> str | None:
        """A named trigger secret (webhook shared secret, GitHub HMAC key): env first, then the file."""
        value = os.environ.get("GENNAKER_TRIGGER_SECRET_" + name.upper().replace("-", "_"))
        if value:
            return value
        if self.trigger_secrets_file is None:
            return None
        try:
            secrets = yaml.safe_load(self.trigger_secrets_file.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return None
        found = secrets.get(name) if isinstance(secrets, dict) else None
        return str(found) if found is not None else None

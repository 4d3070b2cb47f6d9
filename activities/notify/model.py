"""Notification settings of the worker (gennaker.yaml `notifications:`). What the workflow decides
(events, requests, `notifications_for`) is in workflows/notification_model.py; the package
(`activities.notify`) exports both."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from activities.accounts import SecretRef

# ---- worker-side configuration ----------------------------------------------------------------


class SmtpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    host: str
    port: int = 587
    starttls: bool = Field(default=True, description="Upgrade with STARTTLS before AUTH (port 587)")
    ssl: bool = Field(default=False, description="Implicit TLS from the first byte (port 465)")
    ca_file: Path | None = Field(default=None, description="Trust this CA (bundle) instead of the system's")
    username: str | None = None
    password: SecretRef | None = None
    sender: str = Field(alias="from", description="From: address, e.g. 'Gennaker <cd@example.com>'")
    timeout_seconds: float = 15


class SlackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    webhook_url: SecretRef | None = Field(default=None, description="Incoming webhook used for any address")
    channels: dict[str, SecretRef] = Field(
        default_factory=dict, description="Per-address incoming webhooks, e.g. '#deploys': {env: SLACK_DEPLOYS}"
    )
    allow_address_urls: bool = Field(
        default=True, description="Accept a webhook URL as the notification address (it is then in history)"
    )


class SmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    base_url: str = "https://api.twilio.com"
    account_sid: str
    auth_token: SecretRef
    sender: str = Field(alias="from", description="From number in E.164, e.g. +15005550006")


class WebhookNotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    secret: SecretRef | None = Field(default=None, description="HMAC-SHA256 key; unsigned when absent")
    signature_header: str = "X-Gennaker-Signature"


class NotificationSettings(BaseModel):
    """`notifications:` in gennaker.yaml. A channel that is not configured fails its notifications
    with NotificationNotConfigured (except webhooks, which need no configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    email: SmtpSettings | None = None
    slack: SlackSettings | None = None
    sms: SmsSettings | None = None
    webhook: WebhookNotifySettings = Field(default_factory=WebhookNotifySettings)
    http_timeout_seconds: float = 10

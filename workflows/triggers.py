"""Trigger declarations of a saved pipeline (Spinnaker's `triggers`), validated like stages.

Secrets never appear here: a trigger names a secret (`secret: github-shop`) that the gateway holds
(GENNAKER_TRIGGER_SECRETS_FILE or GENNAKER_TRIGGER_SECRET_<NAME>), so pipeline configs and
execution histories stay free of them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.cron import cron_problem

SECRET_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
_INTERVAL = re.compile(r"^(\d+)(s|m|h)$")


def _valid_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    id: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="Stable name")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameter values for started runs")


class CronTrigger(_Trigger):
    """A Temporal Schedule per trigger: `cron` (5 fields, e.g. "0 3 * * 1-5") or `interval` ("30s")."""

    type: Literal["cron"] = "cron"
    cron: str | None = Field(default=None, description="Standard 5-field cron expression")
    interval: str | None = Field(default=None, description="Every N seconds/minutes/hours: 30s, 5m, 1h")
    timezone: str = Field(default="UTC", description="IANA zone for `cron`, e.g. Europe/Paris")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        problem = cron_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_spec(self) -> CronTrigger:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of `cron` or `interval`")
        if self.interval is not None and not _INTERVAL.match(self.interval):
            raise ValueError(f"interval {self.interval!r} must look like 30s, 5m or 1h")
        return self

    def interval_seconds(self) -> int | None:
        match = _INTERVAL.match(self.interval or "")
        if not match:
            return None
        return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


class WebhookTrigger(_Trigger):
    """POST /webhooks/webhook/{source} with header X-Gennaker-Secret; `payloadConstraints` are
    regexes that fields of the JSON payload (dotted paths) must match, as in Spinnaker."""

    type: Literal["webhook"] = "webhook"
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    secret: str = Field(pattern=SECRET_NAME, description="Name of a gateway-held secret")
    payloadConstraints: dict[str, str] = Field(default_factory=dict)

    @field_validator("payloadConstraints")
    @classmethod
    def _regexes(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _valid_regex(pattern)
        return value


class GitTrigger(_Trigger):
    """GitHub push events (POST /webhooks/git/github, HMAC X-Hub-Signature-256)."""

    type: Literal["git"] = "git"
    source: Literal["github"] = "github"
    project: str = Field(min_length=1, description="Owner or organisation")
    slug: str = Field(min_length=1, description="Repository name")
    branch: str | None = Field(default=None, description="Regex the branch must match; default any")
    secret: str = Field(pattern=SECRET_NAME)

    @field_validator("branch")
    @classmethod
    def _branch_is_regex(cls, value: str | None) -> str | None:
        return _valid_regex(value)


class DockerTrigger(_Trigger):
    """A push to a registry account's repository (registry notifications)."""

    type: Literal["docker"] = "docker"
    account: str = Field(min_length=1, description="Registry account name")
    repository: str = Field(min_length=1)
    tag: str | None = Field(default=None, description="Regex the tag must match; default any")

    @field_validator("tag")
    @classmethod
    def _tag_is_regex(cls, value: str | None) -> str | None:
        return _valid_regex(value)


FinishedStatus = Literal["SUCCEEDED", "TERMINAL", "CANCELED"]


class PipelineFinishedTrigger(_Trigger):
    """Another pipeline finished with one of `status`."""

    type: Literal["pipeline"] = "pipeline"
    application: str = Field(min_length=1)
    pipeline: str = Field(min_length=1)
    status: list[FinishedStatus] = Field(default_factory=lambda: list[FinishedStatus](["SUCCEEDED"]))


class JenkinsTrigger(_Trigger):
    """A Jenkins build finished (Notification plugin JSON, POST /webhooks/jenkins/{master})."""

    type: Literal["jenkins"] = "jenkins"
    master: str = Field(min_length=1)
    job: str = Field(min_length=1)
    secret: str = Field(pattern=SECRET_NAME)
    status: list[str] = Field(default_factory=lambda: ["SUCCESS"])


Trigger = Annotated[
    CronTrigger | WebhookTrigger | GitTrigger | DockerTrigger | PipelineFinishedTrigger | JenkinsTrigger,
    Field(discriminator="type"),
]

"""Who may do what: a YAML policy per application, closed by default (no rule, no access).

    admins: [alice, group:platform]          # everything, everywhere
    applications:
      shop:
        READ: [group:shop-devs, bob]         # see pipelines and executions
        EXECUTE: [group:shop-devs]           # start, cancel, pause, judge, restart
        WRITE: [alice]                       # save and delete pipelines
        resources:                           # what its executions may touch (docs/security.md)
          accounts:
            prod: {namespaces: [shop, "shop-*"]}
            staging: {namespaces: ["*"], clusterScoped: true}
          clusters: [shop, "shop-*"]           # default: the application's own name and `<app>-…`
          repositories: ["shop/*"]
          triggerSecrets: ["shop-*"]           # secrets its webhook/git/jenkins triggers may name
      "*":                                   # every application
        READ: [group:everyone]
    accounts:
      prod: {requireGrants: true}            # only applications granted it explicitly

A principal is a subject (a token's subject, a JWT's `sub`) or `group:<name>`. EXECUTE and WRITE
each include READ. A manual judgment may further restrict who judges it with `approvers`.

Resources are closed by default once an application has a `resources` block. An application
without one gets the `"*"` entry's `resources` if there is one; otherwise it may touch every account
that does not declare `requireGrants: true` (what a single-team installation did before tenancy),
and nothing on those that do. Server-group clusters always belong to the application named by their
prefix, whatever the grants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.grants import AccountGrant, ApplicationGrants, matches, own_names


class Permission(StrEnum):
    READ = "READ"
    EXECUTE = "EXECUTE"
    WRITE = "WRITE"


IMPLIED = {
    Permission.READ: {Permission.READ, Permission.EXECUTE, Permission.WRITE},
    Permission.EXECUTE: {Permission.EXECUTE},
    Permission.WRITE: {Permission.WRITE},
}


@dataclass(frozen=True)
class Identity:
    subject: str
    groups: frozenset[str] = field(default_factory=frozenset)
    via: str = "token"

    def principals(self) -> set[str]:
        return {self.subject, *(f"group:{g}" for g in self.groups)}


class PolicyError(ValueError):
    pass


class Resources(BaseModel):
    """What an application may touch (see the module docstring); absent entries grant nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    accounts: dict[str, AccountGrant] = Field(default_factory=dict, description="Account name or glob")
    clusters: list[str] | None = Field(default=None, description="Cluster patterns; default <app>, <app>-*")
    repositories: list[str] = Field(default_factory=list)
    triggerSecrets: list[str] = Field(
        default_factory=list, description="Trigger secret names (globs) its webhook, git and jenkins triggers may name"
    )


class ApplicationPolicy(BaseModel):
    """Who may do what with one application, and what its executions may touch."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    READ: list[str] = Field(default_factory=list)
    EXECUTE: list[str] = Field(default_factory=list)
    WRITE: list[str] = Field(default_factory=list)
    resources: Resources | None = None

    def members(self) -> dict[Permission, list[str]]:
        return {Permission.READ: self.READ, Permission.EXECUTE: self.EXECUTE, Permission.WRITE: self.WRITE}


class AccountPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    requireGrants: bool = Field(default=False, description="Only applications granted this account may touch it")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    admins: list[str] = Field(default_factory=list)
    applications: dict[str, ApplicationPolicy] = Field(default_factory=dict)
    accounts: dict[str, AccountPolicy] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Policy:
        if path is None:
            return cls()
        try:
            return cls.model_validate(yaml.safe_load(path.read_text()) or {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise PolicyError(f"auth policy {path}: {exc}") from None

    def is_admin(self, identity: Identity) -> bool:
        return bool(identity.principals() & set(self.admins))

    def allows_somewhere(self, identity: Identity, permission: Permission) -> bool:
        """True when some application (or every one) grants `permission` to the identity."""
        return any(self.allows(identity, application, permission) for application in self.applications) or (
            self.is_admin(identity)
        )

    def allows(self, identity: Identity, application: str, permission: Permission) -> bool:
        if self.is_admin(identity):
            return True
        principals = identity.principals()
        for scope in (application, "*"):
            entry = self.applications.get(scope)
            if entry is None:
                continue
            for granted, members in entry.members().items():
                if granted in IMPLIED[permission] and principals & set(members):
                    return True
        return False

    def right_lacked(self, holder: Identity, candidate: Identity) -> str | None:
        """A right `candidate` has and `holder` lacks ("admin", "EXECUTE on appb"), or None.

        Who may name `candidate` as the identity a pipeline's triggered runs act as: only someone
        with every right it has, so naming it never raises what one may do (Spinnaker's fiat lets a
        user pick a service account only when the user has all of its roles)."""
        if self.is_admin(candidate) and not self.is_admin(holder):
            return "admin"
        for application in sorted(self.applications):
            for permission in Permission:
                if self.allows(candidate, application, permission) and not self.allows(holder, application, permission):
                    return f"{permission.value} on application {application}"
        return None

    def grants_for(self, application: str) -> ApplicationGrants:
        """What `application`'s executions may touch, with the rule it comes from (module docstring)."""
        for scope in (application, "*"):
            entry = self.applications.get(scope)
            if entry is not None and entry.resources is not None:
                resources = entry.resources
                explicit = resources.clusters is not None
                return ApplicationGrants(
                    application=application,
                    rule=f"policy applications.{scope}.resources",
                    accounts=dict(resources.accounts),
                    clusters=resources.clusters if resources.clusters is not None else own_names(application),
                    foreignClusters={} if explicit else self._longer_names(application),
                    repositories=list(resources.repositories),
                )
        required = sorted(name for name, account in self.accounts.items() if account.requireGrants)
        return ApplicationGrants(
            application=application,
            unrestricted=True,
            rule=f"policy: application {application} has no resources block",
            requireGrants=required,
            clusters=own_names(application),
            foreignClusters=self._longer_names(application),
        )

    def trigger_secret_refusal(self, application: str, secret: str) -> str | None:
        """Why `application`'s triggers may not name the gateway's trigger secret `secret`, or None.

        A secret authenticates a sender (a team's CI, a GitHub repository): a trigger naming another
        team's secret and source would be started by that team's deliveries and read their payloads.
        Closed once the application has a `resources` block, like its other resources; open without
        one (single-team installations)."""
        for scope in (application, "*"):
            entry = self.applications.get(scope)
            if entry is not None and entry.resources is not None:
                granted = entry.resources.triggerSecrets
                if matches(secret, granted):
                    return None
                return (
                    f"policy: application {application} may not use trigger secret {secret}; granted trigger "
                    f"secrets: {', '.join(granted) or 'none'} (rule: policy applications.{scope}.resources)"
                )
        return None

    def _longer_names(self, application: str) -> dict[str, list[str]]:
        """The policy's applications named `<application>-…`, with the clusters each owns by name:
        `app-stack-detail` cannot tell `team` + stack `x` from application `team-x`, so the longer
        application owns them (otherwise `team` could destroy or take over `team-x-web`)."""
        return {
            other: own_names(other)
            for other in sorted(self.applications)
            if other != "*" and other.startswith(f"{application}-")
        }

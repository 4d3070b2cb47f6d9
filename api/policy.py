"""Who may do what: a YAML policy per application, closed by default (no rule, no access).

    admins: [alice, group:platform]          # everything, everywhere
    applications:
      shop:
        READ: [group:shop-devs, bob]         # see pipelines and executions
        EXECUTE: [group:shop-devs]           # start, cancel, pause, judge, restart
        WRITE: [alice]                       # save and delete pipelines
      "*":                                   # every application
        READ: [group:everyone]

A principal is a subject (a token's subject, a JWT's `sub`) or `group:<name>`. EXECUTE and WRITE
each include READ. A manual judgment may further restrict who judges it with `approvers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


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


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    admins: list[str] = Field(default_factory=list)
    applications: dict[str, dict[Permission, list[str]]] = Field(default_factory=dict)

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
            grants = self.applications.get(scope, {})
            for granted, members in grants.items():
                if granted in IMPLIED[permission] and principals & set(members):
                    return True
        return False

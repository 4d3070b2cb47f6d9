"""What one application may touch, as resolved from the policy at submission (core/policy.py).

It lives with the activities because it crosses to the worker with every manifest write; the
workflow records it and checks it first.

`ApplicationGrants` is small on purpose: it is recorded on the execution (`PipelineRunInput.grants`),
checked by the workflow before every account call (workflows/account_calls.py) and carried to the
worker with every manifest write, which checks the objects against it again
(activities/kubernetes/ownership.py). Every refusal names the rule that refused, so an operator knows
which line of the policy to change.

Patterns are shell globs (`fnmatch`, case-sensitive): `appa-*`, `team-?`, `*`.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field


def matches(value: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def own_names(application: str) -> list[str]:
    """The names an application owns by its name alone: `<app>` and `<app>-…` (Spinnaker's
    `app-stack-detail` naming)."""
    return [application, f"{application}-*"]


class AccountGrant(BaseModel):
    """What an application may touch in one account (or in every account matching the key)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    namespaces: list[str] = Field(default_factory=list, description="Glob patterns of namespaces")
    clusterScoped: bool = Field(
        default=False, description="May create/change cluster-scoped kinds (ClusterRole, Namespace, CRD…)"
    )


class ApplicationGrants(BaseModel):
    """The resources an application's executions may touch; `unrestricted` when no rule applies
    (no policy, or an application without `resources` on accounts that do not require grants)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    application: str
    unrestricted: bool = False
    rule: str = Field(description="Where these grants come from, e.g. policy applications.appa.resources")
    accounts: dict[str, AccountGrant] = Field(
        default_factory=dict, description="Account name (or glob) -> what may be touched in it"
    )
    requireGrants: list[str] = Field(
        default_factory=list, description="Accounts refused unless granted explicitly (unrestricted grants only)"
    )
    clusters: list[str] = Field(default_factory=list, description="Server-group cluster name patterns")
    foreignClusters: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Application -> the cluster patterns it owns that `clusters` also matches (never ours)",
    )
    repositories: list[str] = Field(default_factory=list, description="Registry repository patterns")

    @classmethod
    def open(cls, application: str, rule: str = "no policy: single-tenant") -> ApplicationGrants:
        return cls(application=application, unrestricted=True, rule=rule, clusters=own_names(application))

    def account_grant(self, account: str) -> AccountGrant | None:
        """The grant for `account`, None when the application may not touch it at all."""
        if self.unrestricted:
            if account in self.requireGrants:
                return None
            return AccountGrant(namespaces=["*"], clusterScoped=True)
        if account in self.accounts:
            return self.accounts[account]
        for pattern, grant in self.accounts.items():
            if fnmatchcase(account, pattern):
                return grant
        return None

    def _refused(self, what: str) -> str:
        return f"policy: application {self.application} may not touch {what} (rule: {self.rule})"

    def account_refusal(self, kind: str, account: str, namespace: str | None = None) -> str | None:
        """Why the application may not touch `account` (and `namespace` in it), or None."""
        if kind == "registry":
            # Registry accounts are checked by repository (repository_refusal); the account itself
            # is refused only when it requires grants and none is given.
            if self.unrestricted and account in self.requireGrants:
                return self._refused(f"account {account} (it requires grants)")
            return None
        grant = self.account_grant(account)
        if grant is None:
            required = " (it requires grants)" if self.unrestricted else ""
            return self._refused(f"account {account}{required}")
        if namespace is not None and not matches(namespace, grant.namespaces):
            allowed = ", ".join(grant.namespaces) or "none"
            return self._refused(f"account {account} namespace {namespace}; granted namespaces: {allowed}")
        return None

    def cluster_refusal(self, cluster: str) -> str | None:
        """Server-group clusters belong to the application named by their prefix: the longest
        one, so `team` does not own `team-x-web` when `team-x` is an application too."""
        for owner, patterns in sorted(self.foreignClusters.items()):
            if matches(cluster, patterns):
                return self._refused(f"cluster {cluster}; it belongs to application {owner}")
        if matches(cluster, self.clusters or own_names(self.application)):
            return None
        allowed = ", ".join(self.clusters or own_names(self.application))
        return self._refused(f"cluster {cluster}; its clusters are {allowed}")

    def repository_refusal(self, repository: str) -> str | None:
        if self.unrestricted or matches(repository, self.repositories):
            return None
        return self._refused(f"repository {repository}; granted repositories: {', '.join(self.repositories) or 'none'}")

"""Artifact accounts and limits, from the worker's configuration only (`artifacts:` in gennaker.yaml).

Secrets are `SecretRef`s (a file or an environment variable) read at the moment of a request; they
never enter a model dump, a workflow payload or an error message. A credential is only ever sent to
the place its account names (`url_prefixes` of an http account, the `api_url` of a GitHub/GitLab
account, the `url` of a Helm repository): a tenant cannot point an artifact carrying the company's
GitHub token at a server of their own. `applications` limits which applications may use an account
(empty: every application).

Fetches obey the worker's one egress policy, the top-level `egress:` section (the worker passes it
in as `egress` here; `artifacts.egress` in a config file is deprecated, see workers/config.py).

Example:
```yaml
egress: {allow_hosts: [git.internal], allow_cidrs: [10.20.0.0/16]}
artifacts:
  http:
    - {name: nexus, url_prefixes: ["https://nexus.internal/"], username: ci, password: {env: NEXUS_PASSWORD}}
  github: [{name: github, token: {file: /run/secrets/github-token}}]
  gitlab: [{name: gitlab, api_url: https://gitlab.internal/api/v4, token: {env: GITLAB_TOKEN}}]
  git: [{name: git-internal, url_prefixes: ["https://git.internal/"], username: ci, token: {env: GIT_TOKEN}}]
  helm: [{name: charts, url: https://charts.internal/stable}]
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from activities.accounts import ACCOUNT_NAME, SecretRef
from activities.egress import EgressPolicy


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=ACCOUNT_NAME)
    applications: list[str] = Field(default_factory=list, description="Applications allowed to use it; empty = all")

    def usable_by(self, application: str) -> bool:
        return not self.applications or application in self.applications


class HttpArtifactAccount(_Account):
    """http/file credentials: HTTP basic (username + password) or a bearer token, for URLs under `url_prefixes`."""

    url_prefixes: list[str] = Field(min_length=1, description="Credentials are sent only to URLs under these")
    username: str | None = None
    password: SecretRef | None = None
    token: SecretRef | None = Field(default=None, description="Sent as Authorization: Bearer")

    @model_validator(mode="after")
    def _one_kind(self) -> HttpArtifactAccount:
        if self.token is not None and (self.username or self.password):
            raise ValueError(f"http account {self.name}: give username/password or token, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError(f"http account {self.name}: username and password go together")
        return self


class GitHubArtifactAccount(_Account):
    """github/file: files through GitHub's contents API (`api_url`, GitHub Enterprise: https://host/api/v3)."""

    api_url: str = "https://api.github.com"
    token: SecretRef | None = Field(default=None, description="A token with read access to the repositories")


class GitLabArtifactAccount(_Account):
    """gitlab/file: files through GitLab's repository files API (`api_url` ends in /api/v4)."""

    api_url: str = "https://gitlab.com/api/v4"
    token: SecretRef | None = Field(default=None, description="Sent as PRIVATE-TOKEN")


class GitRepoArtifactAccount(_Account):
    """git/repo over HTTPS with a token or password (sent only to `url_prefixes`); `git://` and
    `file://` repositories need no account but must pass the egress policy."""

    url_prefixes: list[str] = Field(min_length=1)
    username: str = Field(default="git", description="User name sent with the token")
    token: SecretRef | None = None


class HelmArtifactAccount(_Account):
    """helm/chart: a chart repository (`index.yaml` + chart archives) at `url`."""

    url: str = Field(description="Repository root holding index.yaml")
    username: str | None = None
    password: SecretRef | None = None


class ArtifactLimits(BaseModel):
    """Bounds on what one fetch may bring onto the worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_file_bytes: int = Field(default=8 * 1024 * 1024, gt=0, description="One fetched file")
    max_repo_bytes: int = Field(default=200 * 1024 * 1024, gt=0, description="A checked-out repository or chart")
    max_repo_files: int = Field(default=20_000, gt=0)
    max_seconds: float = Field(default=300, gt=0, description="One fetch, clone or render")
    max_rendered_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Output of one bakeManifest")
    max_render_memory_bytes: int = Field(
        default=1024 * 1024 * 1024, ge=64 * 1024 * 1024, description="Data segment of helm/kustomize (prlimit)"
    )


class ArtifactAccounts(BaseModel):
    """The `artifacts:` section of a worker's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    egress: EgressPolicy = Field(
        default_factory=EgressPolicy,
        description="Deprecated in config files: the worker fills it from its top-level `egress`",
    )
    limits: ArtifactLimits = Field(default_factory=ArtifactLimits)
    http: list[HttpArtifactAccount] = Field(default_factory=list)
    github: list[GitHubArtifactAccount] = Field(default_factory=list)
    gitlab: list[GitLabArtifactAccount] = Field(default_factory=list)
    git: list[GitRepoArtifactAccount] = Field(default_factory=list)
    helm: list[HelmArtifactAccount] = Field(default_factory=list)
    store_dir: Path | None = Field(
        default=None, description="Content store for rendered manifests; share it between workers (default: cache)"
    )
    tools_dir: Path | None = Field(default=None, description="Where helm/kustomize are (default: PATH, then cache)")

    @model_validator(mode="after")
    def _unique(self) -> ArtifactAccounts:
        for kind in ("http", "github", "gitlab", "git", "helm"):
            names = [a.name for a in getattr(self, kind)]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"artifacts.{kind}: duplicate account names {', '.join(duplicates)}")
        return self

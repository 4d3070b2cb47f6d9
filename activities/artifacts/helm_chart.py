"""`helm/chart` artifacts: chart `name` at `version` (newest when empty) from a chart repository.

A chart repository is `index.yaml` plus chart archives (helm.sh/docs/topics/chart_repository):
`entries.<name>` lists versions, each with `urls` (absolute, or relative to the repository) and a
`digest` (SHA-256 of the archive), which is checked. The repository is the artifact account's `url`
(Spinnaker's helm account) or, without an account, the artifact's `location`. Archives are unpacked
with tarfile's `data` filter (no absolute paths, no `..`, no links leaving the tree, no devices)
after their members are counted and sized against the limits.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import yaml

from activities.artifacts.errors import ARTIFACT_INVALID, ARTIFACT_NOT_FOUND, ARTIFACT_TOO_LARGE, artifact_error
from activities.artifacts.files import FileFetcher, under
from activities.artifacts.model import Artifact

MAX_INDEX_BYTES = 16 * 1024 * 1024
_CHART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Semantic-version order good enough to pick the newest (pre-releases sort before releases)."""
    core, _, pre = version.lstrip("v").partition("-")
    parts: list[tuple[int, int | str]] = [(1, int(p)) if p.isdigit() else (0, p) for p in re.split(r"[.+]", core)]
    parts.append((1, 0) if not pre else (0, pre))
    return tuple(parts)


class HelmChartFetcher:
    def __init__(self, fetcher: FileFetcher) -> None:
        self.fetcher = fetcher
        self.limits = fetcher.settings.limits

    def fetch(self, artifact: Artifact, application: str, scratch: Path) -> Path:
        """Download and unpack the chart under `scratch`; return the chart's directory."""
        what = artifact.describe()
        name = artifact.name or ""
        if _CHART_NAME.match(name) is None:
            raise artifact_error(what, "needs `name`: the chart's name in its repository", ARTIFACT_INVALID)
        account = self.fetcher.account(artifact, application, self.fetcher.settings.helm)
        repository = account.url if account is not None else artifact.location
        if not repository:
            raise artifact_error(
                what, "needs an artifactAccount (a Helm repository) or `location` (its URL)", ARTIFACT_INVALID
            )
        base = repository if repository.endswith("/") else repository + "/"
        auth = None
        if account is not None and account.username and account.password:
            auth = httpx.BasicAuth(account.username, account.password.read())
        index = self.fetcher.get(artifact, urljoin(base, "index.yaml"), auth=auth, limit=MAX_INDEX_BYTES)
        try:
            document = yaml.safe_load(index.content)
        except yaml.YAMLError as exc:
            raise artifact_error(what, f"{base}index.yaml is not YAML: {exc}", ARTIFACT_INVALID) from None
        entry = self._entry(artifact, document, base)
        urls = entry.get("urls") or []
        if not urls or not isinstance(urls[0], str):
            raise artifact_error(
                what, f"{base}index.yaml lists no URL for {name} {entry.get('version')}", ARTIFACT_INVALID
            )
        archive_url = urljoin(base, urls[0])
        # The account's credentials go only to archives under the repository itself.
        archive = self.fetcher.get(
            artifact, archive_url, auth=auth if under(archive_url, base) else None, limit=self.limits.max_file_bytes
        ).content
        digest = entry.get("digest")
        if isinstance(digest, str) and digest and hashlib.sha256(archive).hexdigest() != digest.removeprefix("sha256:"):
            raise artifact_error(what, f"{archive_url} does not match the digest in index.yaml", ARTIFACT_INVALID)
        return self.unpack(artifact, archive, scratch / "chart")

    def _entry(self, artifact: Artifact, document: Any, base: str) -> dict[str, Any]:
        what = artifact.describe()
        entries = document.get("entries") if isinstance(document, dict) else None
        versions = entries.get(artifact.name) if isinstance(entries, dict) else None
        if not isinstance(versions, list) or not versions:
            raise artifact_error(what, f"chart {artifact.name} is not in {base}index.yaml", ARTIFACT_NOT_FOUND)
        candidates = [v for v in versions if isinstance(v, dict) and isinstance(v.get("version"), str)]
        if artifact.version:
            chosen = [v for v in candidates if v["version"] in (artifact.version, artifact.version.lstrip("v"))]
            if not chosen:
                listed = ", ".join(sorted((v["version"] for v in candidates), key=_version_key)[-5:])
                raise artifact_error(
                    what,
                    f"version {artifact.version} is not in {base}index.yaml (newest: {listed})",
                    ARTIFACT_NOT_FOUND,
                )
            return chosen[0]
        return max(candidates, key=lambda v: _version_key(v["version"]))

    def unpack(self, artifact: Artifact, archive: bytes, destination: Path) -> Path:
        """Unpack a chart archive safely; return its single top-level directory."""
        what = artifact.describe()
        try:
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
                members = tar.getmembers()
                total = sum(m.size for m in members if m.isfile())
                if len(members) > self.limits.max_repo_files or total > self.limits.max_repo_bytes:
                    raise artifact_error(
                        what,
                        f"the chart archive holds {len(members)} entries, {total} bytes: over the limits",
                        ARTIFACT_TOO_LARGE,
                    )
                tar.extractall(destination, members=members, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise artifact_error(what, f"the chart archive cannot be unpacked: {exc}", ARTIFACT_INVALID) from None
        tops = [p for p in destination.iterdir() if p.is_dir()]
        if len(tops) != 1 or not (tops[0] / "Chart.yaml").is_file():
            raise artifact_error(what, "the chart archive must hold one directory with a Chart.yaml", ARTIFACT_INVALID)
        return tops[0]

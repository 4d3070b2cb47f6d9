"""`git/repo` artifacts: a repository (`reference`, its URL) at a ref (`version`: branch, tag or
commit; default HEAD), narrowed to `metadata.subPath` (Spinnaker's git/repo artifact,
spinnaker.io/docs/reference/ref-artifacts/types/git-repo).

The checkout is made with the real `git`, hardened for hostile repositories and references:
- the URL passes the worker's egress policy first (https/http, git:// when the policy's
  `allowed_schemes` lists it, file:// only under an allow-listed prefix); git may use no other
  protocol (`GIT_ALLOW_PROTOCOL`), follows no HTTP redirect, never prompts, and reads no system or
  user configuration;
- arguments come after `--`, refs are checked against a conservative pattern;
- a fresh repository without template hooks; `core.symlinks=false`, so a link in the repository is
  checked out as a small text file and can never point a renderer at the worker's own files;
- a sub-path must stay inside the checkout (no absolute paths, no `..`);
- the clone is shallow when the ref allows it, killed when it runs longer than `max_seconds` or
  grows beyond `max_repo_bytes`, and the checkout is refused beyond `max_repo_files`.
Credentials (an account's token) go to git through `GIT_CONFIG_*` environment variables scoped to
the account's URL prefix, so they appear in no command line, no error and no history.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path, PurePosixPath

from activities.artifacts.errors import (
    ARTIFACT_ACCOUNT,
    ARTIFACT_INVALID,
    ARTIFACT_NOT_FOUND,
    ARTIFACT_TOO_LARGE,
    ARTIFACT_UNAVAILABLE,
    artifact_error,
)
from activities.artifacts.files import FileFetcher, heartbeat, under
from activities.artifacts.model import Artifact
from activities.egress import EgressDenied

GIT_SCHEMES = ("https", "http", "git", "file")
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/+@-]{1,200}$")
_COMMIT = re.compile(r"^[0-9a-f]{7,64}$")
WATCH_SECONDS = 1.0


def safe_relative(path: str | None, what: str) -> PurePosixPath:
    """A path inside a checkout: relative, no `..`, no empty or odd parts. '' or None → '.'."""
    if not path or path.strip() in ("", ".", "/"):
        return PurePosixPath(".")
    candidate = PurePosixPath(path.strip().strip("/") if not path.startswith("/") else path)
    if candidate.is_absolute() or any(part in ("..", "") for part in candidate.parts) or "\\" in path or "\0" in path:
        raise artifact_error(
            what, f"path {path!r} must be relative and stay inside the repository (no '..')", ARTIFACT_INVALID
        )
    return candidate


def inside(root: Path, relative: PurePosixPath, what: str) -> Path:
    """`root/relative`, resolved, refused if it leaves `root` (e.g. through a directory symlink)."""
    target = (root / relative).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise artifact_error(what, f"path {relative} leaves the repository", ARTIFACT_INVALID)
    return target


def _tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for base, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            try:
                size += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                continue
    return files, size


class GitCheckout:
    """Checks out git/repo artifacts into a directory the caller owns (and removes)."""

    def __init__(self, fetcher: FileFetcher) -> None:
        self.fetcher = fetcher
        self.settings = fetcher.settings

    def _environment(self, artifact: Artifact, application: str, url: str, scheme: str, home: Path) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": scheme,
            "GIT_ASKPASS": "/bin/false",
            "SSH_ASKPASS": "/bin/false",
            "LC_ALL": "C",
        }
        config = [("http.followRedirects", "false"), ("core.symlinks", "false")]
        account = self.fetcher.account(artifact, application, self.settings.git)
        if account is not None and account.token is not None:
            prefix = next((p for p in account.url_prefixes if under(url, p)), None)
            if prefix is None:
                raise artifact_error(
                    artifact.describe(),
                    f"{url} is outside the URLs of account {account.name}; its token is not sent there",
                    ARTIFACT_ACCOUNT,
                )
            secret = base64.b64encode(f"{account.username}:{account.token.read()}".encode()).decode()
            config.append((f"http.{prefix}.extraHeader", f"Authorization: Basic {secret}"))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def _git(self, artifact: Artifact, args: list[str], env: dict[str, str], watch: Path, deadline: float) -> str:
        """Run git, heartbeating; killed past the deadline or when `watch` grows beyond the size limit."""
        what = artifact.describe()
        limit = self.settings.limits.max_repo_bytes
        process = subprocess.Popen(
            ["git", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
        )
        try:
            while True:
                try:
                    out, err = process.communicate(timeout=WATCH_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    heartbeat(f"git {args[0]} for {what}")
                    if time.monotonic() > deadline:
                        raise artifact_error(
                            what,
                            f"git {args[0]} took longer than {self.settings.limits.max_seconds:.0f}s",
                            ARTIFACT_UNAVAILABLE,
                        ) from None
                    if _tree_size(watch)[1] > limit:
                        raise artifact_error(
                            what, f"the repository is larger than {limit} bytes", ARTIFACT_TOO_LARGE
                        ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            detail = " ".join(err.strip().splitlines()[-3:])[:500]
            raise _GitFailed(detail)
        return out

    def checkout(self, artifact: Artifact, application: str, scratch: Path) -> Path:
        """Check out the artifact under `scratch`; return the directory of its sub-path."""
        what = artifact.describe()
        url = (artifact.reference or "").strip()
        if not url or url.startswith("-"):
            raise artifact_error(what, "needs a reference: the repository's URL", ARTIFACT_INVALID)
        try:
            # git:// is plain text and unauthenticated: only when the operator allows the scheme; file://
            # only under an allow-listed prefix (check_url enforces that).
            schemes = [s for s in GIT_SCHEMES if s in self.settings.egress.allowed_schemes or s == "file"]
            destination = self.settings.egress.check_url(url, schemes=schemes)
        except EgressDenied as exc:
            raise EgressDenied(f"artifact {what}: {exc.message}") from None
        ref = (artifact.version or "HEAD").strip()
        if _REF.match(ref) is None:
            raise artifact_error(what, f"version {ref[:80]!r} is not a usable branch, tag or commit", ARTIFACT_INVALID)
        sub_path = safe_relative(artifact.sub_path, what)
        repo = scratch / "repo"
        home = scratch / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = self._environment(artifact, application, url, destination.scheme, home)
        deadline = time.monotonic() + self.settings.limits.max_seconds
        try:
            self._git(artifact, ["init", "--quiet", "--template=", "--", str(repo)], env, repo, deadline)
            try:
                self._git(
                    artifact,
                    [
                        "-C",
                        str(repo),
                        "fetch",
                        "--quiet",
                        "--depth=1",
                        "--no-tags",
                        "--no-recurse-submodules",
                        "--",
                        url,
                        ref,
                    ],
                    env,
                    repo,
                    deadline,
                )
            except _GitFailed:
                if _COMMIT.match(ref) is None:
                    raise
                # Some servers refuse a shallow fetch of a bare commit id: fetch everything, then pick it.
                self._git(
                    artifact,
                    [
                        "-C",
                        str(repo),
                        "fetch",
                        "--quiet",
                        "--no-tags",
                        "--no-recurse-submodules",
                        "--",
                        url,
                        "+refs/heads/*:refs/remotes/origin/*",
                    ],
                    env,
                    repo,
                    deadline,
                )
            target = "FETCH_HEAD" if _COMMIT.match(ref) is None else ref
            self._git(artifact, ["-C", str(repo), "checkout", "--quiet", "--detach", target, "--"], env, repo, deadline)
        except _GitFailed as exc:
            hint = (
                ARTIFACT_NOT_FOUND
                if "not found" in str(exc).lower() or "couldn't find" in str(exc).lower()
                else ARTIFACT_UNAVAILABLE
            )
            raise artifact_error(what, f"git could not check out {ref} from {url}: {exc}", hint) from None
        files, size = _tree_size(repo)
        limits = self.settings.limits
        if files > limits.max_repo_files or size > limits.max_repo_bytes:
            raise artifact_error(
                what,
                f"the checkout has {files} files, {size} bytes; limits are {limits.max_repo_files} files, "
                f"{limits.max_repo_bytes} bytes",
                ARTIFACT_TOO_LARGE,
            )
        directory = inside(repo, sub_path, what)
        if not directory.exists():
            raise artifact_error(what, f"{sub_path} does not exist in {url} at {ref}", ARTIFACT_NOT_FOUND)
        return directory


class _GitFailed(Exception):
    pass

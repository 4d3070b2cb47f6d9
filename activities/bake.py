"""Bake: build an image on a Docker engine, tag it and push it to the account's registry (rosco's job).

Idempotent by content: the build inputs (context files, Dockerfile path, build args, target,
labels) hash to `inputHash`, stored as the image label `io.gennaker.bake.inputs`. A retried bake
that finds its tag already pushed with the same hash reuses it (re-pointing any missing extra tags
in the registry) instead of building again. Build and push output is streamed as heartbeats; a
failed build reports its last lines.

Confinement (every tenant may be hostile): a `path` context must lie, after resolving symlinks,
under a directory the worker configuration lists in `bake.allowed_context_dirs` (none by default);
`subdir` cannot climb out of the context with `..` or a symlink; git and tarball URLs obey the
worker's egress policy, git runs with its URL after `--`, only the protocols the policy allows
(`GIT_ALLOW_PROTOCOL`, so no `ext::`, and `file://` only when allow-listed) and no redirects.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.egress import EgressPolicy, guarded_client, redacted_url
from activities.grants import ApplicationGrants
from activities.registry import GRANTS_FIELD_DESCRIPTION, RegistryClient, authorize_repository

INPUT_LABEL = "io.gennaker.bake.inputs"
FAILURE_LINES = 30
SILENT_HEARTBEAT_SECONDS = 5.0
BUILD_FAILED = "BuildFailed"
BAD_CONTEXT = "InvalidBuildContext"
NON_RETRYABLE = [BUILD_FAILED, BAD_CONTEXT]
GIT_SCHEMES = ("https", "http", "git", "ssh", "file")


class BakeSettings(BaseModel):
    """The `bake:` section of a worker's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    allowed_context_dirs: list[Path] = Field(
        default_factory=list,
        validation_alias=AliasChoices("allowed_context_dirs", "allowedContextDirs"),
        description="Directories on the worker under which `path` build contexts may lie; none: `path` is refused",
    )


class BuildContext(BaseModel):
    """Where the build context comes from: exactly one of `path`, `gitUrl` (+ `gitRef`), `tarballUrl`."""

    path: str | None = Field(default=None, description="A directory on the worker")
    gitUrl: str | None = Field(default=None, description="A git repository the worker can clone")
    gitRef: str = Field(default="HEAD", description="Branch, tag or commit of gitUrl")
    tarballUrl: str | None = Field(default=None, description="A .tar or .tar.gz of the context")
    subdir: str | None = Field(default=None, description="Build from this directory inside the source")

    @model_validator(mode="after")
    def _one_source(self) -> BuildContext:
        if sum(v is not None for v in (self.path, self.gitUrl, self.tarballUrl)) != 1:
            raise ValueError("give exactly one of `path`, `gitUrl` or `tarballUrl`")
        return self

    def describe(self) -> str:
        if self.gitUrl is not None:
            return f"{redacted_url(self.gitUrl)}@{self.gitRef}"
        return str(self.path or redacted_url(str(self.tarballUrl)))


class BakeRequest(BaseModel):
    """No secrets here: it is recorded in the workflow history (registry credentials stay on the worker)."""

    repository: str
    tag: str
    extraTags: list[str] = Field(default_factory=list)
    context: BuildContext
    dockerfile: str = "Dockerfile"
    buildArgs: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    skipIfExists: bool = False
    pull: bool = False
    grants: ApplicationGrants | None = Field(default=None, description=GRANTS_FIELD_DESCRIPTION)


class BakeResult(BaseModel):
    image: str = Field(description="<registry>/<repository>:<tag>")
    digest: str
    imageWithDigest: str
    tags: list[str]
    inputHash: str | None = None
    reused: bool = Field(description="The tag already held an image with these inputs (or skipIfExists)")
    skipped: bool = Field(default=False, description="skipIfExists found the tag; nothing was built")


def _tree_digest(root: Path, dockerfile: str) -> str:
    """Content hash of a build context: relative paths, modes and bytes, `.git` left out."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git" or path.is_dir():
            continue
        digest.update(f"{rel.as_posix()}\0{path.lstat().st_mode & 0o111:o}\0".encode())
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        else:
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update(b"\0")
    digest.update(dockerfile.encode())
    return digest.hexdigest()


def input_hash(request: BakeRequest, context_digest: str) -> str:
    inputs = {
        "context": context_digest,
        "dockerfile": request.dockerfile,
        "buildArgs": request.buildArgs,
        "target": request.target,
        "labels": request.labels,
    }
    return "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def _follow(stream: Iterable[dict[str, Any]], what: str) -> Iterator[dict[str, Any]]:
    """Yield the engine's JSON messages, heartbeating each one and every few seconds of silence
    (a long RUN step prints nothing, but the activity must still look alive)."""
    items: queue.Queue[Any] = queue.Queue()
    end = object()

    def pump() -> None:
        try:
            for item in stream:
                items.put(item)
        except Exception as exc:  # handed to the activity thread, which raises it
            items.put(exc)
        finally:
            items.put(end)

    threading.Thread(target=pump, name=f"follow {what}", daemon=True).start()
    last = what
    while True:
        try:
            item = items.get(timeout=SILENT_HEARTBEAT_SECONDS)
        except queue.Empty:
            activity.heartbeat(last)
            continue
        if item is end:
            return
        if isinstance(item, Exception):
            raise item
        line = str(item.get("stream") or item.get("status") or "").strip()
        if line:
            last = f"{what}: {line[:200]}"
            activity.heartbeat(last)
        yield item


class BakeActivities:
    """Builds with the Docker engine of this worker (`docker_host` of the account, else $DOCKER_HOST)."""

    def __init__(
        self, registry: RegistryClient, egress: EgressPolicy | None = None, settings: BakeSettings | None = None
    ) -> None:
        self.registry = registry
        self.egress = egress or EgressPolicy()
        self.settings = settings or BakeSettings()
        self._docker: Any = None
        self._lock = threading.Lock()

    @property
    def docker(self) -> Any:
        with self._lock:
            if self._docker is None:
                import docker

                host = self.registry.account.docker_host
                environment = {**os.environ, "DOCKER_HOST": host} if host else None
                self._docker = docker.from_env(environment=environment, timeout=3600)
            return self._docker

    def close(self) -> None:
        if self._docker is not None:
            self._docker.close()

    def engine_status(self) -> str:
        try:
            version = self.docker.api.version()
        except Exception as exc:
            return f"unreachable: {exc}"
        return f"Docker {version.get('Version', '?')} ({self.docker.api.base_url})"

    def _name(self, request: BakeRequest) -> str:
        return f"{self.registry.account.address}/{request.repository}"

    def _refuse(self, message: str) -> ApplicationError:
        return ApplicationError(
            f"registry {self.registry.account.name}: {message}", type=BAD_CONTEXT, non_retryable=True
        )

    def _confined_path(self, given: str) -> Path:
        allowed = [d.resolve() for d in self.settings.allowed_context_dirs]
        if not allowed:
            raise self._refuse(
                f"build context path {given!r} refused: this worker allows no `path` contexts "
                "(an operator lists directories in bake.allowed_context_dirs)"
            )
        root = Path(given).resolve()
        if not any(root.is_relative_to(d) for d in allowed):
            raise self._refuse(
                f"build context path {given!r} refused: it is not under bake.allowed_context_dirs "
                f"({', '.join(map(str, allowed))})"
            )
        return root

    def _clone(self, context: BuildContext, root: Path) -> None:
        url, ref = str(context.gitUrl), context.gitRef
        if ref.startswith("-"):
            raise self._refuse(f"gitRef {ref!r} refused: a ref cannot start with '-'")
        schemes = [s for s in GIT_SCHEMES if s in self.egress.allowed_schemes or s == "file"]
        destination = self.egress.check_url(url, schemes=schemes)  # EgressDenied names the policy
        env = {
            **os.environ,
            # Only the URL's own protocol, for submodules and anything git would fetch next too: no
            # ext:: (runs a command), no file:// the policy did not allow.
            "GIT_ALLOW_PROTOCOL": destination.scheme,
            "GIT_TERMINAL_PROMPT": "0",
        }
        no_redirects = ["-c", "http.followRedirects=false"]
        for args in (
            ["git", *no_redirects, "clone", "--quiet", "--no-checkout", "--", url, str(root)],
            ["git", "-C", str(root), "checkout", "--quiet", "--detach", ref, "--"],
        ):
            activity.heartbeat(" ".join(a for a in args[:5] if a != url))
            done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False, env=env)
            if done.returncode != 0:
                raise ApplicationError(
                    f"registry {self.registry.account.name}: cannot get build context "
                    f"{redacted_url(url)}@{ref}: {done.stderr.strip()[-500:]}",
                    type=BAD_CONTEXT,
                )

    def _download(self, context: BuildContext, scratch: Path) -> Path:
        account = self.registry.account.name
        root = scratch / "tarball"
        archive = scratch / "context.tar"
        shown = redacted_url(str(context.tarballUrl))
        try:
            with (
                guarded_client(self.egress, timeout=60) as http,
                http.stream("GET", str(context.tarballUrl)) as response,
            ):
                response.raise_for_status()
                with archive.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                        activity.heartbeat(f"downloading {shown}")
            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
        except httpx.HTTPStatusError as exc:
            raise ApplicationError(
                f"registry {account}: cannot download build context {shown}: {exc.response.status_code}",
                type=BAD_CONTEXT if exc.response.status_code < 500 else "ContextDownloadFailed",
            ) from None
        except tarfile.TarError as exc:
            raise ApplicationError(
                f"registry {account}: {shown} is not a tar archive: {exc}", type=BAD_CONTEXT
            ) from None
        return root

    def _materialize(self, context: BuildContext, scratch: Path) -> Path:
        if context.path is not None:
            root = self._confined_path(context.path)
        elif context.gitUrl is not None:
            root = scratch / "git"
            self._clone(context, root)
        else:
            root = self._download(context, scratch)
        if context.subdir:
            inner = (root / context.subdir).resolve()
            if Path(context.subdir).is_absolute() or not inner.is_relative_to(root.resolve()):
                raise self._refuse(f"subdir {context.subdir!r} refused: it leads out of the build context")
            root = inner
        if not root.is_dir():
            raise self._refuse(
                f"build context {context.describe()}"
                f"{'/' + context.subdir if context.subdir else ''} is not a directory on worker"
            )
        return root

    def _reuse(self, request: BakeRequest, wanted_hash: str | None) -> BakeResult | None:
        """The pushed image for this tag, if it may be reused; extra tags are re-pointed to it."""
        manifest = self.registry.manifest(request.repository, request.tag)
        if manifest is None:
            return None
        found = self.registry.image_config(request.repository, manifest)
        labels = (found.get("config") or {}).get("Labels") or {}
        if wanted_hash is not None and labels.get(INPUT_LABEL) != wanted_hash:
            return None
        for tag in request.extraTags:
            existing = self.registry.manifest(request.repository, tag)
            if existing is None or existing.digest != manifest.digest:
                self.registry.put_manifest(request.repository, tag, manifest)
        name = self._name(request)
        return BakeResult(
            image=f"{name}:{request.tag}",
            digest=manifest.digest,
            imageWithDigest=f"{name}@{manifest.digest}",
            tags=[request.tag, *request.extraTags],
            inputHash=labels.get(INPUT_LABEL),
            reused=True,
            skipped=wanted_hash is None,
        )

    def _build(self, request: BakeRequest, root: Path, digest: str) -> None:
        image = f"{self._name(request)}:{request.tag}"
        tail: deque[str] = deque(maxlen=FAILURE_LINES)
        stream = self.docker.api.build(
            path=str(root),
            dockerfile=request.dockerfile,
            tag=image,
            buildargs=request.buildArgs or None,
            target=request.target,
            labels={**request.labels, INPUT_LABEL: digest},
            rm=True,
            forcerm=True,
            pull=request.pull,
            decode=True,
        )
        for item in _follow(stream, f"build {image}"):
            text = str(item.get("stream") or "").rstrip("\n")
            if text.strip():
                tail.extend(text.splitlines())
            if "error" in item or "errorDetail" in item:
                error = (item.get("errorDetail") or {}).get("message") or item.get("error")
                lines = "\n".join(tail)
                raise ApplicationError(
                    f"build of {image} failed: {error} (nothing was pushed)\n"
                    f"--- last {len(tail)} build log lines ---\n{lines}",
                    type=BUILD_FAILED,
                )

    def _push(self, request: BakeRequest, tag: str) -> str:
        credentials = self.registry.credentials()
        auth = {"username": credentials[0], "password": credentials[1]} if credentials else None
        name = self._name(request)
        digest = ""
        stream = self.docker.api.push(name, tag=tag, stream=True, decode=True, auth_config=auth)
        left = f"the image is built on the worker's engine, {name}:{tag} is not in the registry"
        for item in _follow(stream, f"push {name}:{tag}"):
            if "error" in item or "errorDetail" in item:
                error = str((item.get("errorDetail") or {}).get("message") or item.get("error"))
                if "unauthorized" in error.lower() or "authentication required" in error.lower():
                    raise self.registry.unauthorized(f"push of {name}:{tag} refused ({error}; {left})")
                raise ApplicationError(f"push of {name}:{tag} failed: {error} ({left})", type="PushFailed")
            digest = str((item.get("aux") or {}).get("Digest") or digest)
        if not digest:
            raise ApplicationError(f"push of {name}:{tag} reported no digest", type="PushFailed")
        return digest

    @activity.defn(name="bake_image")
    def bake_image(self, request: BakeRequest) -> BakeResult:
        """Build, tag and push; reuse what an earlier attempt (or run) already pushed."""
        # Before anything else: even `skipIfExists` reads the repository's tags.
        authorize_repository(
            request.grants, self.registry.account.name, request.repository, f"baking into {request.repository}"
        )
        # Fail fast on bad credentials, before a long build whose push would be refused anyway.
        self.registry.ping()
        if request.skipIfExists and (found := self._reuse(request, None)) is not None:
            return found
        with tempfile.TemporaryDirectory(prefix="gennaker-bake-") as scratch:
            root = self._materialize(request.context, Path(scratch))
            if not (root / request.dockerfile).is_file():
                raise ApplicationError(
                    f"registry {self.registry.account.name}: no {request.dockerfile} in build context "
                    f"{request.context.describe()}",
                    type=BAD_CONTEXT,
                )
            digest = input_hash(request, _tree_digest(root, request.dockerfile))
            if (found := self._reuse(request, digest)) is not None:
                return found
            self._build(request, root, digest)
            if request.context.path is None:
                shutil.rmtree(root, ignore_errors=True)
        name = self._name(request)
        for tag in request.extraTags:
            self.docker.api.tag(f"{name}:{request.tag}", name, tag=tag)
        pushed = ""
        for tag in [request.tag, *request.extraTags]:
            pushed = self._push(request, tag)
        return BakeResult(
            image=f"{name}:{request.tag}",
            digest=pushed,
            imageWithDigest=f"{name}@{pushed}",
            tags=[request.tag, *request.extraTags],
            inputHash=digest,
            reused=False,
        )

"""Bake (Manifest): render a Helm chart or a Kustomization into manifests, as Spinnaker's rosco does,
with the real `helm` and `kustomize` binaries on the worker.

Request shape (rosco `BakeManifestRequest` / `HelmBakeManifestRequest` / `KustomizeBakeManifestRequest`):
`templateRenderer` HELM3 or KUSTOMIZE (KUSTOMIZE4 accepted as its alias); `outputName` is the Helm
release name; `inputArtifacts[0]` is the chart (a `helm/chart`, a `git/repo` with the chart at
`helmChartFilePath`, or a chart archive as `http/file`/`github/file`/`gitlab/file`/`embedded/base64`)
and the rest are values files, applied in order; `overrides` become `--set-string key=value`
(`--set` with `rawOverrides`, which lets Helm type the values); `namespace` is passed to the render.
For KUSTOMIZE, the only input artifact is a `git/repo` and `kustomizeFilePath` the path of the
`kustomization.yaml` inside it.

The output is an `embedded/base64` artifact named `outputArtifactName` (default `outputName`). The
rendered bytes are always put in the worker's content store (activities/artifacts/store.py) under
their SHA-256, recorded as `metadata.contentDigest`; when they are at most `INLINE_BYTES` they are
also inlined as the `reference` (Spinnaker's shape), otherwise the reference is left empty and a
deploy reads the store. So history carries at most ~44 KB per bake, whatever the chart's size.

Renderers only read the checked-out inputs: Helm and Kustomize get empty home/cache/config
directories, no kubeconfig, a proxy that goes nowhere and no git protocol, and kustomizations are
checked beforehand to reference only paths inside the repository (remote bases would be fetched by
kustomize itself, past the egress policy).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, field_validator, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts.errors import (
    ARTIFACT_INVALID,
    ARTIFACT_TOO_LARGE,
    RENDER_FAILED,
    TOOL_MISSING,
    artifact_error,
)
from activities.artifacts.files import FileFetcher, heartbeat
from activities.artifacts.git_repo import GitCheckout, inside, safe_relative
from activities.artifacts.helm_chart import HelmChartFetcher
from activities.artifacts.manifests import parse_manifests
from activities.artifacts.model import Artifact
from activities.artifacts.settings import ArtifactAccounts
from activities.artifacts.store import ContentStore, default_store_dir

INLINE_BYTES = 32 * 1024
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Fields of a kustomization that name other files or directories to load.
KUSTOMIZE_PATH_FIELDS = ("resources", "bases", "components", "crds", "configurations", "generators", "transformers")
INSTALL_HINT = (
    "run scripts/tools-up.sh on the worker (builds helm and kustomize into ~/.cache/gennaker/bin), or install "
    "{tool} and put it on PATH, or set artifacts.tools_dir in the worker configuration"
)
ARCHIVE_TYPES = ("http/file", "github/file", "gitlab/file", "embedded/base64")


class BakeManifestRequest(BaseModel):
    """Recorded in history: references only, no secrets, no fetched content."""

    templateRenderer: Literal["HELM3", "KUSTOMIZE", "KUSTOMIZE4"]
    outputName: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", description="Helm release name")
    outputArtifactName: str | None = Field(default=None, max_length=253)
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    inputArtifacts: list[Artifact] = Field(min_length=1, max_length=32)
    overrides: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=200)
    rawOverrides: bool = False
    helmChartFilePath: str | None = Field(default=None, max_length=1024)
    kustomizeFilePath: str | None = Field(default=None, max_length=1024)
    includeCRDs: bool = False
    application: str = Field(min_length=1, description="The execution's application (scopes the store)")

    @field_validator("overrides")
    @classmethod
    def _override_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key or key.startswith("-") or "=" in key or "\n" in key or len(key) > 256:
                raise ValueError(f"overrides: {key[:60]!r} is not a usable key (like image.tag)")
        return value

    @model_validator(mode="after")
    def _inputs(self) -> BakeManifestRequest:
        if self.templateRenderer != "HELM3":
            if len(self.inputArtifacts) != 1 or self.inputArtifacts[0].type != "git/repo":
                raise ValueError("KUSTOMIZE renders exactly one git/repo input artifact (at kustomizeFilePath)")
            if self.overrides:
                raise ValueError("overrides are Helm values; KUSTOMIZE takes none")
        return self


class BakeManifestResult(BaseModel):
    artifact: Artifact = Field(description="embedded/base64; reference inline when small, else metadata.contentDigest")
    digest: str
    size: int
    objects: int
    kinds: dict[str, int]
    tool: str = Field(description="The renderer that ran, with its version")


def find_tool(name: str, tools_dir: Path | None) -> str | None:
    """`name` from the configured directory, PATH, or the tools-up.sh cache, in that order."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gennaker" / "bin"
    for directory in [d for d in (tools_dir,) if d is not None]:
        if (directory / name).is_file() and os.access(directory / name, os.X_OK):
            return str(directory / name)
    found = shutil.which(name)
    if found:
        return found
    candidate = cache / name
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


class BakeManifestActivities:
    def __init__(self, settings: ArtifactAccounts, store: ContentStore | None = None) -> None:
        self.settings = settings
        self.store = store or ContentStore(settings.store_dir or default_store_dir())
        self.fetcher = FileFetcher(settings, self.store)
        self.git = GitCheckout(self.fetcher)
        self.charts = HelmChartFetcher(self.fetcher)

    def _tool(self, name: str) -> list[str]:
        found = find_tool(name, self.settings.tools_dir)
        if found:
            return [found]
        if name == "kustomize" and (kubectl := find_tool("kubectl", self.settings.tools_dir)):
            return [kubectl, "kustomize"]
        raise activity_error(f"{name} is not installed on this worker: " + INSTALL_HINT.format(tool=name), TOOL_MISSING)

    def _environment(self, scratch: Path) -> dict[str, str]:
        home = scratch / "tool-home"
        home.mkdir(exist_ok=True)
        dead_proxy = "http://127.0.0.1:9"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": os.devnull,
            "HTTP_PROXY": dead_proxy,
            "HTTPS_PROXY": dead_proxy,
            "NO_PROXY": "",
            "GIT_ALLOW_PROTOCOL": "none",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }

    def _run(self, args: list[str], scratch: Path, what: str) -> bytes:
        """Run a renderer; its output goes to a file watched against the size and time limits."""
        limits = self.settings.limits
        output = scratch / "rendered.yaml"
        deadline = time.monotonic() + limits.max_seconds
        tool = Path(args[0]).name
        # A template can ask for gigabytes (`repeat 1000000000 "x"`): bound the renderer's memory with
        # util-linux prlimit (preexec_fn is unsafe in the activity thread pool).
        prlimit = shutil.which("prlimit")
        if prlimit:
            args = [prlimit, f"--data={limits.max_render_memory_bytes}", "--", *args]
        with output.open("wb") as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self._environment(scratch), cwd=scratch
            )
            try:
                while True:
                    try:
                        process.wait(timeout=1.0)
                        break
                    except subprocess.TimeoutExpired:
                        heartbeat(f"rendering {what}")
                        if time.monotonic() > deadline:
                            raise activity_error(
                                f"{what}: rendering took longer than {limits.max_seconds:.0f}s", RENDER_FAILED
                            ) from None
                        if output.stat().st_size > limits.max_rendered_bytes:
                            raise artifact_error(
                                what, f"renders to more than {limits.max_rendered_bytes} bytes", ARTIFACT_TOO_LARGE
                            ) from None
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            err.seek(0)
            # The first lines say why (a Go runtime failure is followed by pages of stack traces).
            errors = "\n".join(err.read(4000).decode(errors="replace").strip().splitlines()[:12])[:1500]
        if process.returncode != 0:
            raise activity_error(f"{what}: {tool} failed: {errors or f'exit {process.returncode}'}", RENDER_FAILED)
        data = output.read_bytes()
        if len(data) > limits.max_rendered_bytes:
            raise artifact_error(what, f"renders to more than {limits.max_rendered_bytes} bytes", ARTIFACT_TOO_LARGE)
        return data

    def _version(self, command: list[str]) -> str:
        flag = ["version", "--short"] if Path(command[0]).name == "helm" else ["version"]
        if command[-1] == "kustomize":  # kubectl kustomize has no version of its own
            return "kubectl kustomize"
        try:
            done = subprocess.run([*command, *flag], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return Path(command[0]).name
        return f"{Path(command[0]).name} {done.stdout.strip().splitlines()[0] if done.stdout.strip() else '?'}"

    def _chart(self, request: BakeManifestRequest, scratch: Path) -> Path:
        chart = request.inputArtifacts[0]
        what = chart.describe()
        if chart.type == "helm/chart":
            return self.charts.fetch(chart, request.application, scratch)
        if chart.type == "git/repo":
            directory = self.git.checkout(chart, request.application, scratch)
            relative = safe_relative(request.helmChartFilePath, what)
            target = inside(directory, relative, what)
            if target.name == "Chart.yaml":
                target = target.parent
            if not (target / "Chart.yaml").is_file():
                raise artifact_error(what, f"no Chart.yaml at {relative} (set helmChartFilePath)", ARTIFACT_INVALID)
            return target
        if chart.type in ARCHIVE_TYPES:
            return self.charts.unpack(chart, self.fetcher.fetch(chart, request.application), scratch / "chart")
        raise artifact_error(
            what, "a Helm chart comes from helm/chart, git/repo or a chart archive (.tgz)", ARTIFACT_INVALID
        )

    def _helm(self, request: BakeManifestRequest, scratch: Path) -> tuple[list[str], str]:
        helm = self._tool("helm")
        chart = self._chart(request, scratch)
        args = [*helm, "template", request.outputName, str(chart)]
        if request.namespace:
            args += ["--namespace", request.namespace]
        for index, values in enumerate(request.inputArtifacts[1:]):
            path = scratch / f"values-{index}.yaml"
            path.write_bytes(self.fetcher.fetch(values, request.application))
            args += ["--values", str(path)]
        flag = "--set" if request.rawOverrides else "--set-string"
        for key, value in request.overrides.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args.append(f"{flag}={key}={text}")
        if request.includeCRDs:
            args.append("--include-crds")
        return args, self._version(helm)

    def _kustomize(self, request: BakeManifestRequest, scratch: Path) -> tuple[list[str], str]:
        kustomize = self._tool("kustomize")
        source = request.inputArtifacts[0]
        what = source.describe()
        directory = self.git.checkout(source, request.application, scratch)
        repo_root = scratch / "repo"
        target = inside(directory, safe_relative(request.kustomizeFilePath, what), what)
        if target.is_file():
            target = target.parent
        check_kustomization(target, repo_root.resolve(), what)
        # `kustomize build DIR`, or `kubectl kustomize DIR` (the same code, built into kubectl).
        build = [] if kustomize[-1] == "kustomize" and len(kustomize) > 1 else ["build"]
        return [*kustomize, *build, str(target)], self._version(kustomize)

    @activity.defn(name="bake_manifest")
    def bake_manifest(self, request: BakeManifestRequest) -> BakeManifestResult:
        """Render, store by digest, and answer with the embedded/base64 artifact."""
        what = f"{request.templateRenderer} bake {request.outputName}"
        with tempfile.TemporaryDirectory(prefix="gennaker-bake-manifest-") as directory:
            scratch = Path(directory)
            if request.templateRenderer == "HELM3":
                args, tool = self._helm(request, scratch)
            else:
                args, tool = self._kustomize(request, scratch)
            data = self._run(args, scratch, what)
        objects = parse_manifests(data, what)
        digest = self.store.put(request.application, data)
        kinds = Counter(str(o.get("kind")) for o in objects)
        artifact = Artifact(
            type="embedded/base64",
            name=request.outputArtifactName or request.outputName,
            reference=base64.b64encode(data).decode() if len(data) <= INLINE_BYTES else None,
            metadata={"contentDigest": digest, "size": len(data), "renderer": request.templateRenderer},
        )
        return BakeManifestResult(
            artifact=artifact, digest=digest, size=len(data), objects=len(objects), kinds=dict(kinds), tool=tool
        )

    def activities(self) -> list[Callable[..., Any]]:
        return [self.bake_manifest]


def activity_error(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def check_kustomization(directory: Path, root: Path, what: str, seen: set[Path] | None = None) -> None:
    """Every path a kustomization names (recursively) exists inside `root`: remote bases and files
    outside the checkout are refused before kustomize runs (it would fetch them itself)."""
    seen = seen if seen is not None else set()
    if directory in seen or len(seen) > 200:
        return
    seen.add(directory)
    file = next((directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()), None)
    if file is None:
        raise artifact_error(what, f"no kustomization.yaml in {directory.relative_to(root)}", ARTIFACT_INVALID)
    try:
        document = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise artifact_error(what, f"{file.relative_to(root)} is not valid YAML: {exc}", ARTIFACT_INVALID) from None
    if not isinstance(document, dict):
        raise artifact_error(what, f"{file.relative_to(root)} is not a mapping", ARTIFACT_INVALID)
    if document.get("helmCharts") or document.get("helmChartInflationGenerator"):
        raise artifact_error(what, "kustomize helmCharts are not rendered here; use a HELM3 bake", ARTIFACT_INVALID)
    for field in KUSTOMIZE_PATH_FIELDS:
        entries = document.get(field) or []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            target = (directory / entry).resolve()
            if "://" in entry or (target != root and root not in target.parents) or not target.exists():
                raise artifact_error(
                    what,
                    f"{file.relative_to(root)}: {field} entry {entry!r} is not a path inside the repository "
                    "(remote bases are not fetched; vendor them into the repository)",
                    ARTIFACT_INVALID,
                )
            if target.is_dir():
                check_kustomization(target, root, what, seen)

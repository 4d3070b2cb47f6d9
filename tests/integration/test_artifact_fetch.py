"""Artifact activities for real: files over HTTP on loopback (answering as GitHub's contents API and
GitLab's repository files API document), a Git repository in a temp dir (file URL and `git daemon`),
a Helm chart rendered by `helm template` (from git/repo and from a chart repository), a Kustomize
overlay by `kustomize build`, image binding on the rendered output, and the egress policy refusing
loopback that is not allow-listed. The renderers come from scripts/tools-up.sh (built once, cached).
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import os
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.accounts import SecretRef
from activities.artifacts.activities import ArtifactActivities, FetchManifestsInput
from activities.artifacts.errors import ARTIFACT_ACCOUNT, ARTIFACT_INVALID, ARTIFACT_TOO_LARGE, TOOL_MISSING
from activities.artifacts.files import FileFetcher
from activities.artifacts.git_repo import GitCheckout
from activities.artifacts.model import Artifact
from activities.artifacts.settings import (
    ArtifactAccounts,
    ArtifactLimits,
    GitHubArtifactAccount,
    GitLabArtifactAccount,
    GitRepoArtifactAccount,
    HelmArtifactAccount,
    HttpArtifactAccount,
)
from activities.bake_manifest import INLINE_BYTES, BakeManifestActivities, BakeManifestRequest, BakeManifestResult
from activities.egress import EGRESS_DENIED, EgressPolicy
from tests.support.fake_services import FakeHttp, Recorded, Reply

ROOT = Path(__file__).resolve().parents[2]
APP = "shop"
WEB_YAML = b"""apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.local:5000/shop/web:placeholder"}]
"""
CHART_YAML = "apiVersion: v2\nname: web\nversion: 0.3.0\n"
CHART_VALUES = "image: registry.local:5000/shop/web:placeholder\nreplicas: 1\nlabel: from-chart\nfiller: 0\n"
CHART_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  labels: {label: {{ .Values.label | quote }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: {{ .Values.image | quote }}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-filler}
data:
  filler: {{ repeat (int .Values.filler) "x" | quote }}
"""


@pytest.fixture(scope="module")
def tools_dir() -> Path:
    """helm and kustomize from scripts/tools-up.sh (a cold build takes minutes, then it is cached)."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "tools-up.sh")], capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1].removeprefix("tools: "))


def git(*args: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with a chart (charts/web) and a kustomize base + overlay; tag v1 and a later commit."""
    repo = tmp_path_factory.mktemp("git") / "deploy.git"
    chart = repo / "charts" / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART_YAML)
    (chart / "values.yaml").write_text(CHART_VALUES)
    (chart / "templates" / "deployment.yaml").write_text(CHART_TEMPLATE)
    base = repo / "kustomize" / "base"
    base.mkdir(parents=True)
    (base / "deployment.yaml").write_bytes(WEB_YAML)
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    overlay = repo / "kustomize" / "overlays" / "prod"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "resources: [../../base]\nnamePrefix: prod-\nlabels: [{pairs: {env: prod}}]\n"
    )
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "--quiet", "-m", "v1", cwd=repo)
    git("tag", "v1", cwd=repo)
    (chart / "values.yaml").write_text(CHART_VALUES.replace("from-chart", "from-main"))
    git("commit", "--quiet", "-am", "later", cwd=repo)
    return repo


def accounts(tmp_path: Path, tools: Path | None = None, **egress: object) -> ArtifactAccounts:
    return ArtifactAccounts(egress=EgressPolicy(**egress), store_dir=tmp_path / "store", tools_dir=tools)  # type: ignore[arg-type]


def failure(call: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(call)  # type: ignore[arg-type]
    return caught.value


# ---- files over HTTP ----


def test_http_file_with_basic_auth_binds_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_PASSWORD", "s3cret")
    with FakeHttp() as files:
        url = files.route("GET", "/allowed/web.yaml", Reply(200, WEB_YAML, {"Content-Type": "application/yaml"}))
        settings = ArtifactAccounts(
            egress=EgressPolicy(allow_url_prefixes=[files.url + "/allowed/"]),
            http=[
                HttpArtifactAccount(
                    name="nexus",
                    url_prefixes=[files.url + "/allowed/"],
                    username="ci",
                    password=SecretRef(env="NEXUS_PASSWORD"),
                )
            ],
        )
        image = Artifact(
            type="docker/image", name="registry.local:5000/shop/web", reference="registry.local:5000/shop/web:1.4"
        )
        request = FetchManifestsInput(
            artifact=Artifact(type="http/file", name="web.yaml", reference=url, artifactAccount="nexus"),
            application=APP,
            bindArtifacts=[image],
        )
        fetched = ActivityEnvironment().run(ArtifactActivities(settings).fetch_manifests, request)
        assert fetched.manifests[0]["spec"]["template"]["spec"]["containers"][0]["image"] == image.reference
        assert [b.image for b in fetched.boundImages] == ["registry.local:5000/shop/web:placeholder"]
        assert fetched.digest == "sha256:" + hashlib.sha256(WEB_YAML).hexdigest()
        assert files.received("GET")[0].basic_auth() == ("ci", "s3cret")


def test_size_limit_and_no_credentials_on_redirects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_TOKEN", "tok-123")
    with FakeHttp() as files:
        big = files.route("GET", "/allowed/big.yaml", Reply(200, b"#" * 5000))
        moved = files.route(
            "GET", "/allowed/moved.yaml", Reply(302, b"", {"Location": files.url + "/allowed/web.yaml"})
        )
        settings = ArtifactAccounts(
            egress=EgressPolicy(allow_url_prefixes=[files.url + "/allowed/"]),
            limits=ArtifactLimits(max_file_bytes=4096),
            http=[
                HttpArtifactAccount(
                    name="nexus", url_prefixes=[files.url + "/allowed/"], token=SecretRef(env="NEXUS_TOKEN")
                )
            ],
        )
        activities = ArtifactActivities(settings)
        error = failure(
            lambda: activities.fetch_manifests(
                FetchManifestsInput(artifact=Artifact(type="http/file", reference=big), application=APP)
            )
        )
        assert error.type == ARTIFACT_TOO_LARGE and "4096" in error.message
        error = failure(
            lambda: activities.fetch_manifests(
                FetchManifestsInput(
                    artifact=Artifact(type="http/file", reference=moved, artifactAccount="nexus"), application=APP
                )
            )
        )
        assert error.type == ARTIFACT_INVALID and "credentials are not sent onwards" in error.message
        assert "tok-123" not in error.message
        assert [r.path for r in files.received()] == ["/allowed/big.yaml", "/allowed/moved.yaml"]
        assert files.received()[1].headers["authorization"] == "Bearer tok-123"


def test_loopback_that_is_not_allow_listed_is_refused_before_any_request(tmp_path: Path) -> None:
    with FakeHttp() as files:
        allowed = files.route("GET", "/allowed/web.yaml", Reply(200, WEB_YAML))
        other = files.route("GET", "/other/web.yaml", Reply(200, WEB_YAML))
        # A redirect from an allowed URL to one outside the prefix is refused too.
        bounce = files.route("GET", "/allowed/bounce", Reply(302, b"", {"Location": other}))
        activities = ArtifactActivities(accounts(tmp_path, allow_url_prefixes=[files.url + "/allowed/"]))
        for url in (other, bounce):
            error = failure(
                lambda url=url: activities.fetch_manifests(
                    FetchManifestsInput(artifact=Artifact(type="http/file", reference=url), application=APP)
                )
            )
            assert error.type == EGRESS_DENIED and error.non_retryable, error
            assert "egress policy" in error.message or "not allowed" in error.message
        nothing_allowed = ArtifactActivities(accounts(tmp_path))
        error = failure(
            lambda: nothing_allowed.fetch_manifests(
                FetchManifestsInput(artifact=Artifact(type="http/file", reference=allowed), application=APP)
            )
        )
        assert error.type == EGRESS_DENIED and "127.0.0.1" in error.message and "loopback" in error.message
        assert files.received(path_prefix="/other") == []
        # Only the bounce request itself reached the server.
        assert [r.path for r in files.received()] == ["/allowed/bounce"]


def github_contents(token: str, files: dict[tuple[str, str], bytes]) -> object:
    """GitHub's "Get repository content": raw bytes for the raw media type, else JSON with base64 content."""

    def reply(req: Recorded) -> Reply:
        if req.headers.get("authorization") != f"Bearer {token}":
            return Reply(401, {"message": "Bad credentials"})
        path = req.path.split("/contents/", 1)[1]
        ref = req.query.get("ref", ["main"])[0]
        content = files.get((path, ref))
        if content is None:
            return Reply(404, {"message": "Not Found"})
        if req.headers.get("accept") == "application/vnd.github.raw+json":
            return Reply(200, content, {"Content-Type": "application/vnd.github.raw+json; charset=utf-8"})
        return Reply(200, {"type": "file", "encoding": "base64", "content": base64.b64encode(content).decode()})

    return reply


def test_github_and_gitlab_files_with_tokens_only_for_their_own_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GH_TOKEN", "ghp_test")
    monkeypatch.setenv("GL_TOKEN", "glpat-test")
    with FakeHttp() as github, FakeHttp() as gitlab, FakeHttp() as elsewhere:
        github.route(
            "GET",
            "/repos/org/shop/contents/deploy/web.yaml",
            github_contents("ghp_test", {("deploy/web.yaml", "v1"): WEB_YAML}),
        )

        def gitlab_raw(req: Recorded) -> Reply:
            if req.headers.get("private-token") != "glpat-test":
                return Reply(401, {"message": "401 Unauthorized"})
            if req.query.get("ref") != ["main"]:
                return Reply(404, {"message": "404 File Not Found"})
            return Reply(200, WEB_YAML, {"Content-Type": "text/plain"})

        gitlab.route("GET", "/api/v4/projects/org%2Fshop/repository/files/deploy%2Fweb.yaml/raw", gitlab_raw)
        elsewhere.route("GET", "/repos/org/shop/contents/deploy/web.yaml", Reply(200, WEB_YAML))
        settings = ArtifactAccounts(
            egress=EgressPolicy(allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")]),
            github=[GitHubArtifactAccount(name="github", api_url=github.url, token=SecretRef(env="GH_TOKEN"))],
            gitlab=[
                GitLabArtifactAccount(name="gitlab", api_url=gitlab.url + "/api/v4", token=SecretRef(env="GL_TOKEN"))
            ],
        )
        activities = ArtifactActivities(settings)
        env = ActivityEnvironment()
        from_github = Artifact(
            type="github/file",
            name="deploy/web.yaml",
            reference=github.url + "/repos/org/shop/contents/deploy/web.yaml",
            version="v1",
            artifactAccount="github",
        )
        from_gitlab = Artifact(
            type="gitlab/file",
            name="deploy/web.yaml",
            reference=gitlab.url + "/api/v4/projects/org%2Fshop/repository/files/deploy%2Fweb.yaml/raw",
            version="main",
            artifactAccount="gitlab",
        )
        for artifact in (from_github, from_gitlab):
            fetched = env.run(activities.fetch_manifests, FetchManifestsInput(artifact=artifact, application=APP))
            assert fetched.manifests[0]["metadata"]["name"] == "web"
        assert github.received()[0].query == {"ref": ["v1"]}
        # The GitHub token is not sent to a reference outside the account's API.
        stolen = from_github.model_copy(
            update={"reference": elsewhere.url + "/repos/org/shop/contents/deploy/web.yaml"}
        )
        error = failure(lambda: activities.fetch_manifests(FetchManifestsInput(artifact=stolen, application=APP)))
        assert error.type == ARTIFACT_ACCOUNT and "token is not sent there" in error.message
        assert elsewhere.received() == []
        # An application the account is not granted to cannot use it.
        limited = settings.model_copy(
            update={"github": [settings.github[0].model_copy(update={"applications": ["billing"]})]}
        )
        error = failure(
            lambda: ArtifactActivities(limited).fetch_manifests(
                FetchManifestsInput(artifact=from_github, application=APP)
            )
        )
        assert error.type == ARTIFACT_ACCOUNT and "may not use artifact account github" in error.message
        assert "ghp_test" not in error.message


# ---- git/repo, Helm and Kustomize ----


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def git_daemon(repository: Path) -> Iterator[str]:
    """`git daemon` serving the repository's parent on a loopback port; yields the repository URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={repository.parent}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(repository.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:  # wait until it accepts connections (the event), bounded
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "git daemon did not start"
            time.sleep(0.05)
    yield f"git://127.0.0.1:{port}/{repository.name}"
    process.terminate()
    process.wait(timeout=10)


def bake(settings: ArtifactAccounts, **request: object) -> BakeManifestResult:
    activities = BakeManifestActivities(settings)
    return ActivityEnvironment().run(activities.bake_manifest, BakeManifestRequest(application=APP, **request))  # type: ignore[arg-type]


def rendered(settings: ArtifactAccounts, result: BakeManifestResult) -> list[dict[str, object]]:
    fetched = ActivityEnvironment().run(
        ArtifactActivities(settings).fetch_manifests, FetchManifestsInput(artifact=result.artifact, application=APP)
    )
    return fetched.manifests


def test_git_token_goes_only_to_the_account_prefix_and_never_into_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_TOKEN", "tok-git-456")
    with FakeHttp() as server:
        # Smart HTTP starts with GET <repo>/info/refs?service=git-upload-pack; answer "no such repository".
        server.route("GET", "/team/shop.git/info/refs", Reply(404, "Repository not found"))
        settings = ArtifactAccounts(
            egress=EgressPolicy(allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")]),
            store_dir=tmp_path / "store",
            git=[
                GitRepoArtifactAccount(
                    name="internal", url_prefixes=[server.url + "/team/"], token=SecretRef(env="GIT_TOKEN")
                )
            ],
        )
        checkout = GitCheckout(FileFetcher(settings))
        repo = Artifact(type="git/repo", reference=server.url + "/team/shop.git", artifactAccount="internal")
        with pytest.raises(ApplicationError, match="could not check out HEAD") as caught:
            ActivityEnvironment().run(checkout.checkout, repo, APP, tmp_path / "a")
        assert "tok-git-456" not in caught.value.message
        (request,) = server.received()
        assert request.query == {"service": ["git-upload-pack"]}
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"git:tok-git-456").decode()
        outside = repo.model_copy(update={"reference": server.url + "/other/shop.git"})
        with pytest.raises(ApplicationError, match="token is not sent there") as caught:
            ActivityEnvironment().run(checkout.checkout, outside, APP, tmp_path / "b")
        assert caught.value.type == ARTIFACT_ACCOUNT and len(server.received()) == 1


def test_helm_chart_from_git_daemon_with_values_file_and_overrides(
    tmp_path: Path, tools_dir: Path, git_daemon: str
) -> None:
    with FakeHttp() as files:
        values = files.route("GET", "/values/prod.yaml", Reply(200, b"replicas: 3\nlabel: from-values-file\n"))
        settings = accounts(
            tmp_path, tools_dir, allowed_schemes=["http", "git"], allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")]
        )
        chart = Artifact(type="git/repo", reference=git_daemon, version="v1", metadata={"subPath": "charts"})
        result = bake(
            settings,
            templateRenderer="HELM3",
            outputName="shop-prod",
            namespace="prod",
            inputArtifacts=[chart, Artifact(type="http/file", reference=values)],
            helmChartFilePath="web/Chart.yaml",
            overrides={"image": "registry.local:5000/shop/web:2.0"},
        )
    assert result.tool.startswith("helm v3.") and result.kinds == {"Deployment": 1, "ConfigMap": 1}
    assert result.artifact.type == "embedded/base64" and result.artifact.reference is not None
    deployment = rendered(settings, result)[1]
    assert deployment["metadata"] == {
        "name": "shop-prod-web",
        "namespace": "prod",
        "labels": {"label": "from-values-file"},
    }
    assert deployment["spec"]["replicas"] == 3  # type: ignore[index]
    assert "registry.local:5000/shop/web:2.0" in str(deployment)


def test_large_render_stays_out_of_history_and_is_read_from_the_store(
    tmp_path: Path, tools_dir: Path, repository: Path
) -> None:
    settings = accounts(tmp_path, tools_dir, allow_url_prefixes=[repository.parent.as_uri() + "/"])
    chart = Artifact(type="git/repo", reference=repository.as_uri(), version="main", metadata={"subPath": "charts/web"})
    result = bake(
        settings,
        templateRenderer="HELM3",
        outputName="big",
        inputArtifacts=[chart],
        overrides={"filler": 100_000},
        rawOverrides=True,
    )
    assert result.size > INLINE_BYTES and result.artifact.reference is None
    assert result.artifact.metadata["contentDigest"] == result.digest
    assert len(result.model_dump_json()) < 2000
    manifests = rendered(settings, result)
    assert manifests[1]["metadata"] == {"name": "big-web", "namespace": "default", "labels": {"label": "from-main"}}
    # Another application cannot read this render by its digest.
    error = failure(
        lambda: ArtifactActivities(settings).fetch_manifests(
            FetchManifestsInput(artifact=result.artifact, application="other")
        )
    )
    assert "not in this worker's artifact store" in error.message


def test_renderer_memory_and_output_are_bounded(tmp_path: Path, tools_dir: Path, repository: Path) -> None:
    settings = accounts(tmp_path, tools_dir, allow_url_prefixes=[repository.parent.as_uri() + "/"])
    chart = Artifact(type="git/repo", reference=repository.as_uri(), metadata={"subPath": "charts/web"})
    hungry = settings.model_copy(update={"limits": ArtifactLimits(max_render_memory_bytes=128 * 1024 * 1024)})
    with pytest.raises(ApplicationError, match=r"helm failed: .*out of memory") as caught:
        bake(
            hungry,
            templateRenderer="HELM3",
            outputName="big",
            inputArtifacts=[chart],
            overrides={"filler": 400_000_000},
            rawOverrides=True,
        )
    assert caught.value.type == "ManifestRenderFailed" and len(caught.value.message) < 2000
    small = settings.model_copy(update={"limits": ArtifactLimits(max_rendered_bytes=10_000)})
    with pytest.raises(ApplicationError, match="renders to more than 10000 bytes") as caught:
        bake(
            small,
            templateRenderer="HELM3",
            outputName="big",
            inputArtifacts=[chart],
            overrides={"filler": 50_000},
            rawOverrides=True,
        )
    assert caught.value.type == ARTIFACT_TOO_LARGE


def test_helm_chart_from_a_chart_repository(tmp_path: Path, tools_dir: Path, repository: Path) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(repository / "charts" / "web", arcname="web")
    data = archive.getvalue()
    index = {
        "apiVersion": "v1",
        "entries": {
            "web": [
                {
                    "name": "web",
                    "version": "0.3.0",
                    "urls": ["web-0.3.0.tgz"],
                    "digest": hashlib.sha256(data).hexdigest(),
                },
                {"name": "web", "version": "0.2.0", "urls": ["web-0.2.0.tgz"], "digest": "0" * 64},
            ]
        },
    }
    with FakeHttp() as charts:
        charts.route("GET", "/charts/index.yaml", Reply(200, yaml.safe_dump(index).encode()))
        charts.route("GET", "/charts/web-0.3.0.tgz", Reply(200, data))
        charts.route("GET", "/charts/web-0.2.0.tgz", Reply(200, data))
        settings = accounts(tmp_path, tools_dir, allow_url_prefixes=[charts.url + "/charts/"]).model_copy(
            update={"helm": [HelmArtifactAccount(name="charts", url=charts.url + "/charts")]}
        )
        newest = Artifact(type="helm/chart", name="web", artifactAccount="charts")
        result = bake(settings, templateRenderer="HELM3", outputName="repo", inputArtifacts=[newest])
        assert rendered(settings, result)[1]["metadata"]["name"] == "repo-web"  # type: ignore[index]
        tampered = newest.model_copy(update={"version": "0.2.0"})
        with pytest.raises(ApplicationError, match=r"does not match the digest in index\.yaml"):
            bake(settings, templateRenderer="HELM3", outputName="repo", inputArtifacts=[tampered])


def test_kustomize_overlay_from_a_file_url(tmp_path: Path, tools_dir: Path, repository: Path) -> None:
    settings = accounts(tmp_path, tools_dir, allow_url_prefixes=[repository.parent.as_uri() + "/"])
    source = Artifact(type="git/repo", reference=repository.as_uri(), version="v1")
    result = bake(
        settings,
        templateRenderer="KUSTOMIZE",
        outputName="web",
        inputArtifacts=[source],
        kustomizeFilePath="kustomize/overlays/prod/kustomization.yaml",
    )
    (deployment,) = rendered(settings, result)
    assert deployment["metadata"] == {"name": "prod-web", "labels": {"env": "prod"}}
    # A repository outside the allow-listed directory is refused before git runs.
    elsewhere = accounts(tmp_path, tools_dir, allow_url_prefixes=[(tmp_path / "nothing").as_uri() + "/"])
    with pytest.raises(ApplicationError, match="local files are refused") as caught:
        bake(
            elsewhere,
            templateRenderer="KUSTOMIZE",
            outputName="web",
            inputArtifacts=[source],
            kustomizeFilePath="kustomize/base",
        )
    assert caught.value.type == EGRESS_DENIED
    # An unknown ref fails naming the artifact.
    missing = source.model_copy(update={"version": "no-such-branch"})
    with pytest.raises(ApplicationError, match=r"artifact git/repo .*no-such-branch.*could not check out"):
        bake(settings, templateRenderer="KUSTOMIZE", outputName="web", inputArtifacts=[missing])


def test_missing_renderer_says_which_and_how_to_install(
    tmp_path: Path, repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    git_dir = Path(
        subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()
    ).parent
    monkeypatch.setenv("PATH", f"{empty}:{git_dir}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    settings = accounts(tmp_path, empty, allow_url_prefixes=[repository.parent.as_uri() + "/"])
    chart = Artifact(type="git/repo", reference=repository.as_uri(), metadata={"subPath": "charts/web"})
    with pytest.raises(
        ApplicationError, match=r"helm is not installed on this worker: run scripts/tools-up.sh"
    ) as caught:
        bake(settings, templateRenderer="HELM3", outputName="web", inputArtifacts=[chart])
    assert caught.value.type == TOOL_MISSING and caught.value.non_retryable
    # Without kustomize, a Kustomization is rendered by `kubectl kustomize` when kubectl is there.
    if (git_dir / "kubectl").is_file():
        source = Artifact(type="git/repo", reference=repository.as_uri(), version="v1")
        result = bake(
            settings,
            templateRenderer="KUSTOMIZE",
            outputName="web",
            inputArtifacts=[source],
            kustomizeFilePath="kustomize/overlays/prod",
        )
        assert result.tool == "kubectl kustomize" and result.kinds == {"Deployment": 1}


# ---- through a real worker: the request and result cross Temporal with the project's converter ----


@workflow.defn(name="artifact-bake-probe")
class BakeProbe:
    @workflow.run
    async def run(self, request: BakeManifestRequest) -> BakeManifestResult:
        return await workflow.execute_activity(
            "bake_manifest",
            request,
            result_type=BakeManifestResult,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_bake_through_a_temporal_worker(
    client: Client, tmp_path: Path, tools_dir: Path, repository: Path
) -> None:
    settings = accounts(tmp_path, tools_dir, allow_url_prefixes=[repository.parent.as_uri() + "/"])
    queue = f"artifacts-{uuid.uuid4()}"
    request = BakeManifestRequest(
        application=APP,
        templateRenderer="HELM3",
        outputName="probe",
        inputArtifacts=[
            Artifact(type="git/repo", reference=repository.as_uri(), version="v1", metadata={"subPath": "charts/web"})
        ],
    )
    with ThreadPoolExecutor(4) as pool:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[BakeProbe],
            activities=BakeManifestActivities(settings).activities(),
            activity_executor=pool,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            result = await client.execute_workflow(
                BakeProbe.run, request, id=f"bake-probe-{uuid.uuid4()}", task_queue=queue
            )
    assert result.kinds == {"Deployment": 1, "ConfigMap": 1}
    assert base64.b64decode(result.artifact.reference or "").count(b"name: probe-web") == 1

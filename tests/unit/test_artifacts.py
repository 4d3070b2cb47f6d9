"""Artifacts without servers: expected-artifact matching and resolution, image binding, the egress
policy, and the guards against path escapes, YAML bombs and hostile patterns."""

from __future__ import annotations

import io
import ipaddress
import tarfile
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError

from activities.artifacts.binding import bind_images, image_name
from activities.artifacts.errors import ARTIFACT_INVALID, ARTIFACT_TOO_LARGE
from activities.artifacts.files import FileFetcher, under
from activities.artifacts.git_repo import inside, safe_relative
from activities.artifacts.helm_chart import HelmChartFetcher, _version_key
from activities.artifacts.manifests import parse_manifests
from activities.artifacts.settings import ArtifactAccounts, ArtifactLimits
from activities.artifacts.store import ContentStore
from activities.bake_manifest import BakeManifestRequest, check_kustomization
from activities.egress import EgressDenied, EgressPolicy, address_class
from workflows.artifacts import (
    Artifact,
    ArtifactBindings,
    ArtifactError,
    ExpectedArtifact,
    resolve_expected_artifacts,
    stage_artifact,
)

IMAGE = Artifact(type="docker/image", name="registry.local:5000/shop/web", reference="registry.local:5000/shop/web:1.4")
MANIFEST = Artifact(type="http/file", name="manifests/web.yaml", reference="https://files.example.com/web.yaml")


def expect(id: str, **match: Any) -> ExpectedArtifact:
    extra = {k: match.pop(k) for k in ("useDefaultArtifact", "defaultArtifact", "usePriorArtifact") if k in match}
    return ExpectedArtifact(id=id, matchArtifact=Artifact(**match), **extra)


# ---- matching and resolution (kork ExpectedArtifact.matches, orca ArtifactResolver) ----


def test_match_is_a_whole_field_regex_and_ignores_unset_fields_and_accounts() -> None:
    wanted = expect("img", type="docker/image", name=r"registry\.local:5000/shop/.*", artifactAccount="other")
    assert wanted.matches(IMAGE)
    assert not wanted.matches(MANIFEST)
    # Whole-field: a pattern matching only a prefix of the name is not a match.
    assert not expect("img", type="docker/image", name="registry").matches(IMAGE)
    # A field the candidate lacks does not match a pattern for it.
    assert not expect("v", type="docker/image", version="1.*").matches(IMAGE)


def test_trigger_artifact_binds_by_type_and_name() -> None:
    bindings = resolve_expected_artifacts(
        [
            expect("image", type="docker/image", name=".*/shop/web"),
            expect("manifest", type="http/file", name=".*web.yaml"),
        ],
        [MANIFEST, IMAGE],
    )
    assert bindings.bound == {"image": IMAGE, "manifest": MANIFEST}
    assert bindings.get("image", "stage deploy") == IMAGE


def test_ambiguous_match_names_the_expected_artifact() -> None:
    other = Artifact(
        type="docker/image", name="registry.local:5000/shop/api", reference="registry.local:5000/shop/api:2"
    )
    with pytest.raises(ArtifactError, match=r"expected artifact image matches 2 artifacts from the trigger"):
        resolve_expected_artifacts([expect("image", type="docker/image")], [IMAGE, other])


def test_missing_artifact_names_the_expected_id_and_what_was_tried() -> None:
    with pytest.raises(
        ArtifactError, match=r"expected artifact chart .*not found in the trigger's artifacts; set useDefault"
    ):
        resolve_expected_artifacts([expect("chart", type="helm/chart", name="shop")], [IMAGE])


def test_prior_artifact_then_default() -> None:
    prior_image = Artifact(
        type="docker/image", name="registry.local:5000/shop/web", reference="registry.local:5000/shop/web:1.3"
    )
    default = Artifact(
        type="docker/image", name="registry.local:5000/shop/web", reference="registry.local:5000/shop/web:1.0"
    )
    wanted = expect(
        "image", type="docker/image", usePriorArtifact=True, useDefaultArtifact=True, defaultArtifact=default
    )
    assert resolve_expected_artifacts([wanted], [], prior=[prior_image]).bound["image"] == prior_image
    assert resolve_expected_artifacts([wanted], [], prior=[]).bound["image"] == default
    # The trigger wins over both.
    assert resolve_expected_artifacts([wanted], [IMAGE], prior=[prior_image]).bound["image"] == IMAGE
    only_prior = expect("image", type="docker/image", usePriorArtifact=True)
    with pytest.raises(ArtifactError, match="a prior execution \\(there is none\\)"):
        resolve_expected_artifacts([only_prior], [], prior=None)


def test_default_needs_a_default_artifact_and_ids_are_unique() -> None:
    with pytest.raises(ValidationError, match="useDefaultArtifact needs a defaultArtifact"):
        expect("x", type="http/file", useDefaultArtifact=True)
    with pytest.raises(ArtifactError, match="must be unique: a"):
        resolve_expected_artifacts([expect("a", type="http/file"), expect("a", type="git/repo")], [MANIFEST])


def test_hostile_patterns_are_refused() -> None:
    with pytest.raises(ValidationError, match="nested quantifiers"):
        expect("x", type="http/file", name="(a+)+$")
    with pytest.raises(ValidationError, match="nested quantifiers"):
        expect("x", type="http/file", name=r"(\w*b?)*")
    with pytest.raises(ValidationError, match="limit is 256"):
        expect("x", type="http/file", name="a" * 300)
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        expect("x", type="http/file", name="([unclosed")
    with pytest.raises(ValidationError, match="at most 2 unbounded repetitions"):
        expect("x", type="http/file", name=".*a.*b.*")
    # Ordinary patterns pass; quantifiers escaped or inside a class do not count.
    expect("ok", type="http/file", name=r"(web|api)-[0-9]+\.yaml")
    expect("ok", type="http/file", name=r".*/shop/[*+]\*\+.*")
    # A field longer than the matching bound never matches (the pattern is not even run on it).
    long_ref = Artifact(type="embedded/base64", name="x", reference="A" * 5000)
    assert not expect("any", type="embedded/base64", reference="A*").matches(long_ref)
    assert expect("any", type="embedded/base64").matches(long_ref)


def test_required_ids_and_stage_artifacts_name_the_missing_id() -> None:
    bindings = ArtifactBindings(bound={"image": IMAGE})
    assert bindings.required(["image"], "stage deploy") == [IMAGE]
    with pytest.raises(
        ArtifactError, match=r"stage deploy: requiredArtifactIds: no artifact is bound to .*'nope'.*image"
    ):
        bindings.required(["image", "nope"], "stage deploy")
    assert stage_artifact(ArtifactBindings(), "stage deploy", None, MANIFEST) == MANIFEST
    with pytest.raises(ArtifactError, match="exactly one"):
        stage_artifact(bindings, "stage deploy", "image", MANIFEST)
    with pytest.raises(ArtifactError, match="is a docker/image; expected one of http/file"):
        stage_artifact(bindings, "stage deploy", "image", None, allowed_types=("http/file",))


def test_produced_artifacts_bind_to_the_stage_expected_artifacts() -> None:
    baked = Artifact(type="embedded/base64", name="web", reference="a2luZDogTGlzdA==")
    bindings = ArtifactBindings(bound={"image": IMAGE}).with_produced(
        [baked], [expect("baked", type="embedded/base64", name="web")], "stage bake"
    )
    assert bindings.bound == {"image": IMAGE, "baked": baked}
    with pytest.raises(ArtifactError, match="stage bake: expected artifact other matches none"):
        bindings.with_produced([baked], [expect("other", type="embedded/base64", name="api")], "stage bake")


def test_embedded_content_is_bounded() -> None:
    with pytest.raises(ValidationError, match="the limit is 98304"):
        Artifact(type="embedded/base64", name="big", reference="A" * 100_000)
    with pytest.raises(ValidationError):
        Artifact(type="http/file", reference="https://x", password="nope")  # type: ignore[call-arg]


# ---- image binding (clouddriver Replacer.dockerImage / podDockerImage) ----


def workload(kind: str, images: list[str], init: list[str] | None = None) -> dict[str, Any]:
    pod = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}
    if init:
        pod["initContainers"] = [{"name": f"init{i}", "image": image} for i, image in enumerate(init)]
    spec: dict[str, Any] = {"template": {"spec": pod}}
    if kind == "CronJob":
        spec = {"schedule": "* * * * *", "jobTemplate": {"spec": spec}}
    if kind == "Pod":
        spec = pod
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": kind.lower()}, "spec": spec}


def test_image_name_strips_tag_and_digest_but_keeps_registry_port() -> None:
    assert image_name("nginx") == "nginx"
    assert image_name("nginx:1.25") == "nginx"
    assert image_name("nginx@sha256:" + "a" * 64) == "nginx"
    assert image_name("localhost:5000/app") == "localhost:5000/app"
    assert image_name("localhost:5000/app:v1@sha256:" + "b" * 64) == "localhost:5000/app"


@pytest.mark.parametrize(
    "kind", ["Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet", "CronJob", "Pod", "Rollout"]
)
def test_bound_image_replaces_matching_containers_in_every_workload_kind(kind: str) -> None:
    original = workload(
        kind, ["registry.local:5000/shop/web:old", "busybox:1.36"], init=["registry.local:5000/shop/web"]
    )
    (bound_manifest,), bound = bind_images([original], [IMAGE])
    text = str(bound_manifest)
    assert text.count("registry.local:5000/shop/web:1.4") == 2, text
    assert "busybox:1.36" in text
    assert {(b.container, b.image) for b in bound} == {
        ("c0", "registry.local:5000/shop/web:old"),
        ("init0", "registry.local:5000/shop/web"),
    }
    assert "shop/web:old" in str(original), "the input must not be changed"


def test_binding_ignores_other_names_types_and_prefix_lookalikes() -> None:
    manifest = workload("Deployment", ["registry.local:5000/shop/web-canary:1", "registry.local:5000/shop/webx"])
    (result,), bound = bind_images([manifest], [IMAGE, MANIFEST])
    assert result == manifest and bound == []
    # A docker/image artifact without a name is matched by the name in its reference.
    unnamed = Artifact(type="docker/image", reference="nginx@sha256:" + "c" * 64)
    (result,), bound = bind_images([workload("Deployment", ["nginx:1.25"])], [unnamed])
    assert result["spec"]["template"]["spec"]["containers"][0]["image"] == unnamed.reference


# ---- egress policy ----


def test_restricted_address_classes() -> None:
    cases = {
        "127.0.0.1": "loopback",
        "10.1.2.3": "private",
        "169.254.169.254": "link-local",
        "::1": "loopback",
        "::ffff:127.0.0.1": "loopback",
        "0.0.0.0": "unspecified",
        "100.64.0.1": "non-global",
        "8.8.8.8": None,
    }
    for text, expected in cases.items():
        assert address_class(ipaddress.ip_address(text)) == expected, text


def test_policy_refuses_inward_addresses_unless_allow_listed() -> None:
    policy = EgressPolicy()
    for url in (
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
    ):
        with pytest.raises(EgressDenied, match="egress policy refuses") as caught:
            policy.check_url(url)
        assert caught.value.non_retryable
    assert policy.check_url("https://8.8.8.8/x").addresses == ("8.8.8.8",)
    assert EgressPolicy(allow_hosts=["LocalHost."]).check_url("http://localhost:9/x").host == "localhost"
    assert EgressPolicy(allow_cidrs=[ipaddress.ip_network("127.0.0.0/8")]).check_url("http://127.0.0.2/")
    with pytest.raises(EgressDenied):
        EgressPolicy(allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")]).check_url("http://127.0.0.2/")


def test_url_prefix_allows_only_below_the_prefix_and_no_dot_dot_escape() -> None:
    policy = EgressPolicy(allow_url_prefixes=["http://127.0.0.1:8080/charts/"])
    assert policy.check_url("http://127.0.0.1:8080/charts/index.yaml")
    for url in (
        "http://127.0.0.1:8080/charts/../admin",
        "http://127.0.0.1:8080/chartsx/index.yaml",
        "http://127.0.0.1:8081/charts/index.yaml",
    ):
        with pytest.raises(EgressDenied):
            policy.check_url(url)


def test_schemes_credentials_and_local_files() -> None:
    policy = EgressPolicy(allow_url_prefixes=["file:///srv/git/"])
    with pytest.raises(EgressDenied, match="scheme ftp is not allowed"):
        policy.check_url("ftp://8.8.8.8/x")
    with pytest.raises(EgressDenied, match="credentials in URLs") as caught:
        policy.check_url("https://user:secret@8.8.8.8/")
    assert "secret" not in caught.value.message
    with pytest.raises(EgressDenied, match="local files are refused"):
        policy.check_url("file:///etc/passwd", schemes=["file"])
    with pytest.raises(EgressDenied, match="local files are refused"):
        policy.check_url("file:///srv/git/../../etc/passwd", schemes=["file"])
    assert policy.check_url("file:///srv/git/shop.git", schemes=["file"]).scheme == "file"


def test_credentials_go_only_under_the_account_prefix() -> None:
    assert under("https://nexus.internal/repository/x.yaml", "https://nexus.internal/repository/")
    assert not under("https://nexus.internal.evil.com/repository/x.yaml", "https://nexus.internal/repository/")
    assert not under("https://nexus.internal:8443/repository/x", "https://nexus.internal/repository/")
    assert not under("https://nexus.internal/repositoryx/x", "https://nexus.internal/repository")
    assert not under("https://nexus.internal/repository/../admin", "https://nexus.internal/repository/")


# ---- paths, archives, manifests, store ----


def test_sub_paths_cannot_escape(tmp_path: Path) -> None:
    for bad in ("../x", "/etc", "a/../../b", "a\\..\\b"):
        with pytest.raises(ApplicationError, match="must be relative"):
            safe_relative(bad, "git/repo shop")
    assert str(safe_relative("charts/web/", "x")) == "charts/web"
    root = tmp_path / "repo"
    (root / "ok").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    assert inside(root, safe_relative("ok", "x"), "x") == (root / "ok").resolve()
    with pytest.raises(ApplicationError, match="leaves the repository"):
        inside(root, safe_relative("escape", "x"), "x")


def test_kustomizations_may_not_reach_outside_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "base").mkdir(parents=True)
    (root / "base" / "kustomization.yaml").write_text("resources: [deploy.yaml]\n")
    (root / "base" / "deploy.yaml").write_text("kind: ConfigMap\n")
    overlay = root / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text("resources: [../base]\n")
    check_kustomization(overlay, root.resolve(), "git/repo shop")
    for entry in ("https://github.com/org/repo//base?ref=v1", "github.com/org/repo/base", "../../outside"):
        (overlay / "kustomization.yaml").write_text(f"resources: ['{entry}']\n")
        with pytest.raises(ApplicationError, match="not a path inside the repository"):
            check_kustomization(overlay, root.resolve(), "git/repo shop")


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_chart_archives_unpack_safely(tmp_path: Path) -> None:
    charts = HelmChartFetcher(FileFetcher(ArtifactAccounts(store_dir=tmp_path / "store")))
    chart = Artifact(type="http/file", name="web.tgz", reference="https://x/web.tgz")
    good = charts.unpack(
        chart, tarball({"web/Chart.yaml": b"name: web\n", "web/templates/a.yaml": b""}), tmp_path / "a"
    )
    assert good.name == "web"
    with pytest.raises(ApplicationError, match="cannot be unpacked") as caught:
        charts.unpack(chart, tarball({"web/Chart.yaml": b"", "../../evil": b"x"}), tmp_path / "b")
    assert caught.value.type == ARTIFACT_INVALID
    assert not (tmp_path / "evil").exists()
    small = HelmChartFetcher(FileFetcher(ArtifactAccounts(limits=ArtifactLimits(max_repo_files=2))))
    with pytest.raises(ApplicationError, match="over the limits"):
        small.unpack(chart, tarball({f"web/{i}": b"" for i in range(5)}), tmp_path / "c")
    assert sorted(["1.10.0", "1.9.0", "1.10.0-rc1"], key=_version_key) == ["1.9.0", "1.10.0-rc1", "1.10.0"]


def test_manifest_documents_are_parsed_flattened_and_bounded() -> None:
    text = (
        b"---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n---\n"
    )
    text += b'{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}}\n'
    assert [m["kind"] for m in parse_manifests(text, "x")] == ["ConfigMap", "Service"]
    with pytest.raises(ApplicationError, match="not a Kubernetes object"):
        parse_manifests(b"just: data\n", "x")
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*{chr(96 + level)}"] * 9)
        bomb.append(f"{chr(97 + level)}: &{chr(97 + level)} [{refs}]")
    document = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" + "\n".join("  " + b for b in bomb)
    ).encode()
    with pytest.raises(ApplicationError, match="expand to more than") as caught:
        parse_manifests(document, "x")
    assert caught.value.type == ARTIFACT_TOO_LARGE


def test_store_is_content_addressed_and_scoped_per_application(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.put("shop", b"kind: List\n")
    assert store.put("shop", b"kind: List\n") == digest
    assert store.get("shop", digest) == b"kind: List\n"
    with pytest.raises(ApplicationError, match="not in this worker's artifact store"):
        store.get("other", digest)
    for bad_app, bad_digest in (("../shop", digest), ("shop", "sha256:../../etc/passwd")):
        with pytest.raises(ApplicationError):
            store.get(bad_app, bad_digest)


def test_bake_request_validation() -> None:
    repo = Artifact(type="git/repo", reference="https://git.example.com/shop.git")
    BakeManifestRequest(templateRenderer="KUSTOMIZE", outputName="shop", inputArtifacts=[repo], application="shop")
    with pytest.raises(ValidationError, match="exactly one git/repo"):
        BakeManifestRequest(
            templateRenderer="KUSTOMIZE", outputName="shop", inputArtifacts=[MANIFEST], application="shop"
        )
    with pytest.raises(ValidationError, match="not a usable key"):
        BakeManifestRequest(
            templateRenderer="HELM3",
            outputName="shop",
            inputArtifacts=[repo],
            overrides={"--post-renderer": "x"},
            application="shop",
        )
    with pytest.raises(ValidationError):
        BakeManifestRequest(templateRenderer="HELM2", outputName="shop", inputArtifacts=[repo], application="shop")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BakeManifestRequest(templateRenderer="HELM3", outputName="Bad_Name", inputArtifacts=[repo], application="shop")

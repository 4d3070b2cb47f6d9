"""Bake inputs confined (issue 11 item 10): `path` contexts only under `bake.allowed_context_dirs`,
`subdir` cannot climb out with `..` or a symlink, git URLs obey the egress policy (no `ext::`, no
`file://` unless allow-listed), and git arguments cannot be smuggled in as options. Each refusal
happens before anything is built, against the real registry and engine of the Docker rig."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.bake import BAD_CONTEXT, BakeActivities, BakeRequest, BakeSettings, BuildContext
from activities.egress import EGRESS_DENIED, EgressPolicy
from activities.registry import RegistryClient
from tests.support.docker_rig import DockerRig, docker_rig_fixture  # noqa: F401

DOCKERFILE = "FROM scratch\nCOPY app.txt /app.txt\n"


@pytest.fixture(scope="module")
def allowed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bake-allowed").resolve()


@pytest.fixture(scope="module")
def bakery(docker_rig: DockerRig, allowed_dir: Path) -> Iterator[BakeActivities]:
    client = RegistryClient(docker_rig.registry.account("confined", docker_host=docker_rig.engine.host))
    activities = BakeActivities(client, EgressPolicy(), BakeSettings(allowedContextDirs=[allowed_dir]))
    yield activities
    activities.close()
    client.close()


def context_dir(parent: Path) -> Path:
    directory = parent / f"ctx-{uuid.uuid4().hex[:6]}"
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(DOCKERFILE)
    (directory / "app.txt").write_text("hello")
    return directory


def refusal(bakery: BakeActivities, context: BuildContext) -> ApplicationError:
    request = BakeRequest(repository=f"shop/{uuid.uuid4().hex[:6]}", tag="v1", context=context)
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(bakery.bake_image, request)
    return caught.value


def test_path_contexts_are_refused_when_no_directory_is_allowed(docker_rig: DockerRig, tmp_path: Path) -> None:
    client = RegistryClient(docker_rig.registry.account("unconfined", docker_host=docker_rig.engine.host))
    bakery = BakeActivities(client)
    try:
        error = refusal(bakery, BuildContext(path=str(context_dir(tmp_path))))
    finally:
        client.close()
    assert error.type == BAD_CONTEXT and error.non_retryable
    assert "bake.allowed_context_dirs" in error.message


def test_path_contexts_only_under_allowed_directories(
    bakery: BakeActivities, tmp_path: Path, allowed_dir: Path
) -> None:
    outside = context_dir(tmp_path)
    escape = allowed_dir / f"link-{uuid.uuid4().hex[:6]}"
    escape.symlink_to(outside)
    for given in (str(outside), str(escape), f"{allowed_dir}/../{outside.name}", "/etc"):
        error = refusal(bakery, BuildContext(path=given))
        assert error.type == BAD_CONTEXT and "not under bake.allowed_context_dirs" in error.message, given


def test_subdir_cannot_leave_the_context(bakery: BakeActivities, tmp_path: Path, allowed_dir: Path) -> None:
    inside = context_dir(allowed_dir)
    (inside / "out").symlink_to(context_dir(tmp_path))
    for subdir in ("../", "../../etc", "out", "/etc"):
        error = refusal(bakery, BuildContext(path=str(inside), subdir=subdir))
        assert error.type == BAD_CONTEXT and "leads out of the build context" in error.message, subdir


def test_git_urls_obey_the_egress_policy(bakery: BakeActivities, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    attempts = {
        f"ext::sh -c touch% {marker}": "",
        f"file://{tmp_path}/repo.git": "egress policy",
        "--upload-pack=touch /tmp/x": "",
        "http://169.254.169.254/repo.git": "egress policy",
        "ssh://127.0.0.1/repo.git": "egress policy",
    }
    for url, expected in attempts.items():
        error = refusal(bakery, BuildContext(gitUrl=url))
        assert error.type == EGRESS_DENIED, (url, error.message)
        assert expected in error.message, (url, error.message)
    assert not marker.exists()


def test_git_refs_cannot_be_options(docker_rig: DockerRig, tmp_path: Path) -> None:
    client = RegistryClient(docker_rig.registry.account("refs", docker_host=docker_rig.engine.host))
    bakery = BakeActivities(client, EgressPolicy(allow_url_prefixes=[f"file://{tmp_path}/"]))
    try:
        error = refusal(bakery, BuildContext(gitUrl=f"file://{tmp_path}/repo.git", gitRef="--orphan=x"))
    finally:
        client.close()
    assert error.type == BAD_CONTEXT and "cannot start with '-'" in error.message


def test_the_dev_stack_bakes_its_demo_context_and_nothing_else(docker_rig: DockerRig, tmp_path: Path) -> None:
    """`gennaker dev` allow-lists the checkout's examples/ (the demo bakes examples/frontend) only."""
    from stack.dev import DEV_BAKE, DEV_EGRESS

    demo = Path(__file__).resolve().parents[2] / "examples" / "frontend"
    client = RegistryClient(docker_rig.registry.account("dev", docker_host=docker_rig.engine.host))
    bakery = BakeActivities(client, DEV_EGRESS, DEV_BAKE)
    try:
        assert bakery._materialize(BuildContext(path=str(demo)), tmp_path) == demo
        error = refusal(bakery, BuildContext(path=str(context_dir(tmp_path))))
    finally:
        client.close()
    assert error.type == BAD_CONTEXT and "not under bake.allowed_context_dirs" in error.message

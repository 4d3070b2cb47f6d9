"""The artifacts a trigger brings (`TriggerInfo.artifacts`), in Spinnaker's shapes (echo's
`DockerEventHandler` / `GitEventHandler`, and the `artifacts` list of a webhook or manual payload):

- a docker push: `docker/image` named `<registry>/<repository>`, `reference` with the tag (or the
  digest when there is one), `version` the tag;
- a git push: `git/repo` whose `reference` is the clone URL, `version` the pushed commit, with the
  branch in `metadata.branch`;
- a webhook or manual run: the payload's `artifacts` list, each validated as an `Artifact`.

Pure functions for the gateway (it imports workflows) so every trigger builds them the same way.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from workflows.artifacts import MAX_ARTIFACTS, Artifact


class TriggerArtifactsInvalid(ValueError):
    """A payload's `artifacts` entry that is not an artifact: `field` names it (`artifacts[2].type`)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def docker_image_artifact(registry: str, repository: str, tag: str | None, digest: str | None = None) -> Artifact:
    name = f"{registry.rstrip('/')}/{repository}" if registry else repository
    reference = f"{name}@{digest}" if digest else f"{name}:{tag or 'latest'}"
    return Artifact(type="docker/image", name=name, reference=reference, version=tag or digest)


def git_repo_artifact(clone_url: str, commit: str, branch: str | None = None) -> Artifact:
    return Artifact(
        type="git/repo",
        name=clone_url,
        reference=clone_url,
        version=commit,
        metadata={"branch": branch} if branch else {},
    )


def payload_artifacts(payload: Any) -> list[Artifact]:
    """The `artifacts` list of a webhook's JSON body or a manual run; [] when there is none."""
    raw = payload.get("artifacts") if isinstance(payload, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TriggerArtifactsInvalid("artifacts", "must be a list of artifacts")
    if len(raw) > MAX_ARTIFACTS:
        raise TriggerArtifactsInvalid("artifacts", f"{len(raw)} artifacts; the limit is {MAX_ARTIFACTS}")
    found = []
    for index, item in enumerate(raw):
        try:
            found.append(Artifact.model_validate(item))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in error["loc"])
            field = f"artifacts[{index}].{where}" if where else f"artifacts[{index}]"
            raise TriggerArtifactsInvalid(field, error["msg"]) from None
    return found

"""Script stage side: run a command in a container on the worker's Docker engine.

The container is named after the execution (workflow id + run id) and the stage, not the attempt, so
a retried attempt finds the container the earlier one started and follows it instead of running the
script twice. Outputs are the JSON objects printed on lines `GENNAKER_OUTPUTS {...}`; the exit code
and the last lines of the log come back too. Canceling the activity kills and removes the container.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

NOT_RETRYABLE = ["ScriptImageNotFound", "ScriptImageNotAllowed", "ScriptTimedOut"]
OUTPUTS_MARKER = "GENNAKER_OUTPUTS "
MAX_OUTPUTS_BYTES = 64 * 1024


class ScriptSettings(BaseModel):
    """`scripts:` in gennaker.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    docker_host: str | None = Field(default=None, description="Docker engine; default $DOCKER_HOST")
    allowed_images: list[str] = Field(default_factory=list, description="fnmatch patterns; empty allows any")
    network: str | None = Field(default=None, description="Docker network for script containers")


class ScriptRequest(BaseModel):
    stageKey: str = Field(description="The stage's refId: with the execution it names the container")
    image: str
    command: list[str] | None = Field(default=None, description="Replaces the image's entrypoint")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    workingDir: str | None = None
    timeoutSeconds: float = 3600
    logLines: int = 50
    pullPolicy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    keepContainer: bool = False


class ScriptResult(BaseModel):
    container: str
    image: str
    exitCode: int
    logs: list[str]
    outputs: dict[str, Any] = Field(default_factory=dict)
    outputsError: str | None = None
    reattached: bool = False


def container_name(workflow_id: str, run_id: str, stage: str) -> str:
    digest = hashlib.sha256(f"{workflow_id}/{run_id}/{stage}".encode()).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{workflow_id}-{stage}")[:100]
    return f"gennaker-{readable}-{digest}"


def parse_outputs(lines: list[str]) -> tuple[dict[str, Any], str | None]:
    """Merge every `GENNAKER_OUTPUTS {json}` line, later keys winning."""
    outputs: dict[str, Any] = {}
    for line in lines:
        if not line.startswith(OUTPUTS_MARKER):
            continue
        text = line[len(OUTPUTS_MARKER) :].strip()
        try:
            value = json.loads(text)
        except ValueError as exc:
            return outputs, f"invalid JSON after GENNAKER_OUTPUTS: {exc}: {text[:200]!r}"
        if not isinstance(value, dict):
            return outputs, f"GENNAKER_OUTPUTS must be a JSON object, got {type(value).__name__}"
        outputs.update(value)
    if len(json.dumps(outputs)) > MAX_OUTPUTS_BYTES:
        return {}, f"outputs exceed {MAX_OUTPUTS_BYTES} bytes; pass references (URLs, digests), not data"
    return outputs, None


def _started_at(attrs: dict[str, Any]) -> datetime:
    raw = str(attrs.get("State", {}).get("StartedAt", ""))
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,6})?", raw)
    if match is None or raw.startswith("0001-"):
        return datetime.now(UTC)
    return datetime.fromisoformat(match.group(1) + (match.group(2) or "")).replace(tzinfo=UTC)


class ScriptActivities:
    def __init__(self, settings: ScriptSettings | None = None) -> None:
        self._settings = settings or ScriptSettings()

    def _client(self) -> docker.DockerClient:
        if self._settings.docker_host:
            return docker.DockerClient(base_url=self._settings.docker_host, timeout=60)
        return docker.from_env(timeout=60)

    @activity.defn(name="run_script")
    def run_script(self, req: ScriptRequest) -> ScriptResult:
        allowed = self._settings.allowed_images
        if allowed and not any(fnmatch.fnmatch(req.image, p) for p in allowed):
            raise ApplicationError(
                f"image {req.image} is not allowed on this worker (scripts.allowed_images: {', '.join(allowed)})",
                type="ScriptImageNotAllowed",
                non_retryable=True,
            )
        info = activity.info()
        workflow_id = info.workflow_id or "no-workflow"
        name = container_name(workflow_id, info.workflow_run_id or "no-run", req.stageKey)
        client = self._client()
        try:
            container, reattached = self._find_or_start(client, name, req, workflow_id)
            try:
                exit_code = self._wait(container, req, name)
            except CancelledError:
                activity.logger.info("script canceled: killing container %s", name)
                self._remove(container, kill=True)
                raise
            lines = container.logs(stdout=True, stderr=True).decode("utf-8", "replace").splitlines()
            outputs, problem = parse_outputs(lines)
            if not req.keepContainer:
                self._remove(container)
            return ScriptResult(
                container=name,
                image=req.image,
                exitCode=exit_code,
                logs=[line[:500] for line in lines[-req.logLines :]] if req.logLines else [],
                outputs=outputs,
                outputsError=problem,
                reattached=reattached,
            )
        except APIError as exc:
            raise ApplicationError(
                f"Docker engine failed running {req.image} as {name}: {exc.explanation or exc}",
                type="ScriptDockerError",
            ) from None
        finally:
            client.close()

    def _find_or_start(
        self, client: docker.DockerClient, name: str, req: ScriptRequest, workflow_id: str
    ) -> tuple[Any, bool]:
        try:
            container = client.containers.get(name)
            activity.logger.info("reattaching to script container %s (%s)", name, container.status)
            return container, True
        except NotFound:
            pass
        self._ensure_image(client, req)
        try:
            container = client.containers.create(
                req.image,
                command=req.args or None,
                entrypoint=req.command,
                environment=req.env,
                working_dir=req.workingDir,
                name=name,
                labels={"gennaker.execution": workflow_id[:200], "gennaker.stage": req.stageKey},
                network=self._settings.network,
                detach=True,
            )
        except APIError as exc:
            if exc.status_code != 409:  # 409: a concurrent attempt created it first
                raise
            return client.containers.get(name), True
        activity.heartbeat({"container": name})
        return container, False

    def _ensure_image(self, client: docker.DockerClient, req: ScriptRequest) -> None:
        if req.pullPolicy != "Always":
            try:
                client.images.get(req.image)
                return
            except ImageNotFound:
                if req.pullPolicy == "Never":
                    raise ApplicationError(
                        f"image {req.image} is not on the worker's Docker engine and pullPolicy is Never",
                        type="ScriptImageNotFound",
                        non_retryable=True,
                    ) from None
        repository, _, tag = req.image.rpartition(":") if ":" in req.image.rsplit("/", 1)[-1] else (req.image, "", "")
        try:
            # Streamed so the activity can heartbeat through a long pull.
            for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if "error" in event:
                    raise NotFound(str(event["error"]))
                activity.heartbeat({"pulling": req.image, "status": str(event.get("status", ""))[:100]})
        except (ImageNotFound, NotFound) as exc:
            raise ApplicationError(
                f"image {req.image} could not be pulled: {exc.explanation or exc}",
                type="ScriptImageNotFound",
                non_retryable=True,
            ) from None

    def _wait(self, container: Any, req: ScriptRequest, name: str) -> int:
        container.reload()
        if container.status == "created":
            container.start()
            container.reload()
        deadline = _started_at(container.attrs) + timedelta(seconds=req.timeoutSeconds)
        while container.status not in ("exited", "dead"):
            if datetime.now(UTC) > deadline:
                tail = container.logs(tail=req.logLines or 1).decode("utf-8", "replace").splitlines()
                self._remove(container, kill=True)
                raise ApplicationError(
                    f"script in {req.image} ran longer than {req.timeoutSeconds:g}s; container {name} was killed "
                    f"and removed" + (f". Last lines: {' | '.join(tail[-5:])}" if tail else ""),
                    {"logs": tail},
                    type="ScriptTimedOut",
                    non_retryable=True,
                )
            activity.heartbeat({"container": name})
            time.sleep(0.3)
            container.reload()
        return int(container.attrs["State"]["ExitCode"])

    def _remove(self, container: Any, kill: bool = False) -> None:
        try:
            container.remove(force=kill)
        except NotFound:
            pass
        except APIError as exc:
            activity.logger.warning("could not remove script container %s: %s", container.name, exc)

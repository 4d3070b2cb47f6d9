"""Jenkins builds (Spinnaker's igor): trigger a job on a configured master, follow it to the end.

The REST flow (Jenkins "Remote access API"): GET /crumbIssuer/api/json for a CSRF crumb (session
bound, so the same HTTP client keeps the cookie), POST /job/<name>/buildWithParameters (or /build),
whose 201 answer's Location header is the queue item; GET <queue item>/api/json until it has an
`executable` (the build number and URL); GET <build>/api/json until `building` is false.

Idempotent under retry: the queue item URL is the first heartbeat, and a retried attempt resumes from
the last heartbeat instead of triggering a second build. A canceled activity stops the build.

Egress: the master's own URL is the operator's choice (it may be inward); every other address the
build's answers lead to (queue item, build and artifact URLs, redirects) obeys the worker's egress
policy, so a hostile or compromised Jenkins cannot steer the worker at the metadata service.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any
from urllib.parse import quote, urljoin

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError

from activities.accounts import ACCOUNT_NAME, SecretRef
from activities.egress import EGRESS_DENIED, EgressPolicy, guarded_client

NOT_RETRYABLE = [
    "JenkinsMasterUnknown",
    "JenkinsJobNotFound",
    "JenkinsAuthFailed",
    "JenkinsBuildCanceled",
    "JenkinsPropertyFileMissing",
    EGRESS_DENIED,
]


class JenkinsMaster(BaseModel):
    """One entry of `jenkins:` in gennaker.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=ACCOUNT_NAME)
    url: HttpUrl
    username: str | None = None
    api_token: SecretRef | None = None
    verify_tls: bool = True


class JenkinsBuildRequest(BaseModel):
    master: str
    job: str = Field(description="Job name; folders as a/b")
    parameters: dict[str, str] = Field(default_factory=dict)
    propertyFile: str | None = Field(default=None, description="Archived key=value file whose values become outputs")
    artifacts: list[str] = Field(default_factory=list, description="Glob patterns of archived artifacts to list")
    waitForCompletion: bool = True
    pollIntervalSeconds: float = 5


class JenkinsArtifact(BaseModel):
    fileName: str
    relativePath: str
    url: str


class JenkinsBuildResult(BaseModel):
    master: str
    job: str
    queueItemUrl: str
    buildNumber: int | None = None
    url: str | None = None
    result: str | None = Field(default=None, description="SUCCESS, UNSTABLE, FAILURE, ABORTED, NOT_BUILT")
    durationMs: int | None = None
    artifacts: list[JenkinsArtifact] = Field(default_factory=list)
    properties: dict[str, str] = Field(default_factory=dict)


def job_path(job: str) -> str:
    """'folder/app' -> 'job/folder/job/app' (Jenkins folders nest /job/ segments)."""
    return "/".join(f"job/{quote(part, safe='')}" for part in job.strip("/").split("/"))


def parse_properties(text: str) -> dict[str, str]:
    """The `key=value` / `key: value` lines of a Java-style properties file (no continuations)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut > 0:
            values[line[:cut].strip()] = line[cut + 1 :].strip()
    return values


class _Progress(BaseModel):
    queueItemUrl: str
    buildUrl: str | None = None
    buildNumber: int | None = None


class JenkinsActivities:
    def __init__(self, masters: list[JenkinsMaster], egress: EgressPolicy | None = None) -> None:
        self._masters = {m.name: m for m in masters}
        self._egress = egress or EgressPolicy()

    def _master(self, name: str) -> JenkinsMaster:
        master = self._masters.get(name)
        if master is None:
            known = ", ".join(sorted(self._masters)) or "none"
            raise ApplicationError(
                f"no Jenkins master {name!r} on this worker (configured: {known}); add it under `jenkins:`",
                type="JenkinsMasterUnknown",
                non_retryable=True,
            )
        return master

    def _client(self, master: JenkinsMaster) -> httpx.Client:
        auth = (master.username, master.api_token.read() if master.api_token else "") if master.username else None
        base = str(master.url).rstrip("/") + "/"
        return guarded_client(
            self._egress.allowing_origin(base), base_url=base, auth=auth, verify=master.verify_tls, timeout=8
        )

    @activity.defn(name="run_jenkins_build")
    def run_jenkins_build(self, req: JenkinsBuildRequest) -> JenkinsBuildResult:
        master = self._master(req.master)
        details = activity.info().heartbeat_details
        progress = _Progress.model_validate(details[-1]) if details else None
        with self._client(master) as http:
            try:
                if progress is None:
                    progress = _Progress(queueItemUrl=self._trigger(http, master, req))
                    activity.heartbeat(progress.model_dump())
                else:
                    activity.logger.info("resuming Jenkins build from %s", progress.queueItemUrl)
                result = JenkinsBuildResult(master=req.master, job=req.job, queueItemUrl=progress.queueItemUrl)
                if not req.waitForCompletion:
                    return result
                self._wait_for_executable(http, req, progress)
                build = self._wait_for_build(http, req, progress)
            except CancelledError:
                self._stop(http, progress)
                raise
            except httpx.TransportError as exc:
                raise ApplicationError(
                    f"Jenkins master {req.master} ({master.url}) unreachable: {exc}", type="JenkinsUnavailable"
                ) from None
            result.buildNumber = progress.buildNumber
            result.url = progress.buildUrl
            result.result = build.get("result")
            result.durationMs = build.get("duration")
            result.artifacts = self._artifacts(build, req.artifacts, progress)
            if req.propertyFile and result.result in ("SUCCESS", "UNSTABLE"):
                result.properties = self._properties(http, build, req, progress)
            return result

    def _check(self, response: httpx.Response, req_job: str, master: str, what: str) -> httpx.Response:
        if response.status_code in (401, 403):
            raise ApplicationError(
                f"Jenkins master {master} refused {what} for job {req_job} (HTTP {response.status_code}): check the "
                "username and api_token and the user's Job/Build permission",
                type="JenkinsAuthFailed",
                non_retryable=True,
            )
        if response.status_code == 404:
            raise ApplicationError(
                f"Jenkins master {master} has no job {req_job!r} ({what}: HTTP 404)",
                type="JenkinsJobNotFound",
                non_retryable=True,
            )
        if response.status_code >= 400:
            raise ApplicationError(
                f"Jenkins master {master}: {what} for job {req_job} failed with HTTP {response.status_code}: "
                f"{response.text[:200]}",
                type="JenkinsUnavailable",
            )
        return response

    def _trigger(self, http: httpx.Client, master: JenkinsMaster, req: JenkinsBuildRequest) -> str:
        headers: dict[str, str] = {}
        crumb = http.get("crumbIssuer/api/json")
        if crumb.status_code == 200:  # 404: CSRF protection is off
            body = crumb.json()
            headers[body["crumbRequestField"]] = body["crumb"]
        endpoint = "buildWithParameters" if req.parameters else "build"
        response = http.post(f"{job_path(req.job)}/{endpoint}", data=req.parameters, headers=headers)
        self._check(response, req.job, req.master, "triggering a build")
        location = response.headers.get("Location", "")
        if "/queue/item/" not in location:
            raise ApplicationError(
                f"Jenkins master {req.master} queued job {req.job} but answered no queue item "
                f"(HTTP {response.status_code}, Location {location!r}); Jenkins 1.519+ is required",
                type="JenkinsUnavailable",
                non_retryable=True,
            )
        activity.logger.info("Jenkins %s queued %s as %s", req.master, req.job, location)
        return urljoin(str(http.base_url), str(location))

    def _poll_json(self, http: httpx.Client, url: str, req: JenkinsBuildRequest, what: str) -> dict[str, Any]:
        response = http.get(url.rstrip("/") + "/api/json")
        data: dict[str, Any] = self._check(response, req.job, req.master, what).json()
        return data

    def _wait_for_executable(self, http: httpx.Client, req: JenkinsBuildRequest, progress: _Progress) -> None:
        while progress.buildUrl is None:
            item = self._poll_json(http, progress.queueItemUrl, req, "reading the queue item")
            if item.get("cancelled"):
                raise ApplicationError(
                    f"Jenkins queue item {progress.queueItemUrl} of job {req.job} was canceled in Jenkins",
                    type="JenkinsBuildCanceled",
                    non_retryable=True,
                )
            executable = item.get("executable")
            if executable:
                progress.buildNumber = int(executable["number"])
                progress.buildUrl = str(executable["url"])
                activity.heartbeat(progress.model_dump())
                return
            activity.heartbeat(progress.model_dump())
            time.sleep(req.pollIntervalSeconds)

    def _wait_for_build(self, http: httpx.Client, req: JenkinsBuildRequest, progress: _Progress) -> dict[str, Any]:
        assert progress.buildUrl is not None
        while True:
            build = self._poll_json(http, progress.buildUrl, req, f"reading build #{progress.buildNumber}")
            if not build.get("building") and build.get("result") is not None:
                return build
            activity.heartbeat(progress.model_dump())
            time.sleep(req.pollIntervalSeconds)

    def _stop(self, http: httpx.Client, progress: _Progress | None) -> None:
        """Best effort on cancellation: abort the running build, or take the item off the queue."""
        if progress is None:
            return
        try:
            crumb = http.get("crumbIssuer/api/json")
            headers = {crumb.json()["crumbRequestField"]: crumb.json()["crumb"]} if crumb.status_code == 200 else {}
            if progress.buildUrl:
                http.post(progress.buildUrl.rstrip("/") + "/stop", headers=headers)
            else:
                item_id = progress.queueItemUrl.rstrip("/").rsplit("/", 1)[-1]
                http.post("queue/cancelItem", params={"id": item_id}, headers=headers)
        except httpx.HTTPError as exc:
            activity.logger.warning(
                "could not stop Jenkins build %s: %s", progress.buildUrl or progress.queueItemUrl, exc
            )

    def _artifacts(self, build: dict[str, Any], patterns: list[str], progress: _Progress) -> list[JenkinsArtifact]:
        if not patterns:
            return []
        found = []
        for art in build.get("artifacts", []):
            path = str(art.get("relativePath", ""))
            if any(fnmatch.fnmatch(path, p) for p in patterns):
                url = f"{str(progress.buildUrl).rstrip('/')}/artifact/{path}"
                found.append(JenkinsArtifact(fileName=str(art.get("fileName", path)), relativePath=path, url=url))
        return found[:50]

    def _properties(
        self, http: httpx.Client, build: dict[str, Any], req: JenkinsBuildRequest, progress: _Progress
    ) -> dict[str, str]:
        wanted = str(req.propertyFile)
        paths = [str(a.get("relativePath")) for a in build.get("artifacts", [])]
        path = next((p for p in paths if p == wanted), None) or next(
            (p for p in paths if p.rsplit("/", 1)[-1] == wanted), None
        )
        if path is None:
            raise ApplicationError(
                f"build #{progress.buildNumber} of {req.job} archived no property file {wanted!r} "
                f"(artifacts: {', '.join(paths) or 'none'})",
                type="JenkinsPropertyFileMissing",
                non_retryable=True,
            )
        response = http.get(f"{str(progress.buildUrl).rstrip('/')}/artifact/{path}")
        self._check(response, req.job, req.master, f"reading {path}")
        values = parse_properties(response.text)
        return {k: v[:1000] for k, v in list(values.items())[:100]}

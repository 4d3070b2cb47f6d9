"""Waiting for Kubernetes objects by watching, heartbeating progress, within a deadline.

Level-triggered: every (re)start lists the object first and judges its current state, then watches
from that list's resourceVersion. So a retried activity, a dropped watch or a 410 Gone (history
compacted) all recover the same way, and nothing is missed between list and watch. Each heartbeat
carries the progress text people see in the Temporal UI and the resourceVersion reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.kubernetes.client import NOT_FOUND, KubernetesAccountClient
from activities.kubernetes.discovery import KindDiscovery, ServedKind

WAIT_FAILED = "KubernetesWaitFailed"
WAIT_TIMEOUT = "KubernetesWaitTimeout"
# A watch is re-opened at least this often so heartbeats keep flowing when nothing changes.
WATCH_CHUNK_SECONDS = 5


@dataclass(frozen=True)
class Verdict:
    done: bool
    progress: str
    failed: str | None = None


def heartbeat(progress: str, resource_version: str | None = None) -> None:
    if activity.in_activity():
        activity.heartbeat({"progress": progress, "resourceVersion": resource_version})


def wait_for_object(
    client: KubernetesAccountClient,
    list_fn: Callable[..., Any],
    namespace: str,
    name: str,
    judge: Callable[[Any], Verdict],
    timeout_seconds: float,
    what: str,
) -> Any:
    """Block until `judge(obj)` is done (returns the object) or failed/timeout (raises)."""
    deadline = time.monotonic() + timeout_seconds
    selector = f"metadata.name={name}"
    last = Verdict(done=False, progress="not observed yet")
    while True:
        listing = client.call(list_fn, namespace, field_selector=selector, what=f"list {what}")
        if not listing.items:
            raise ApplicationError(
                f"{what} {namespace}/{name} does not exist (deleted?)", type=NOT_FOUND, non_retryable=True
            )
        version = listing.metadata.resource_version
        last = _judged(judge, listing.items[0], what, version)
        if last.done:
            return listing.items[0]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        stream = watch.Watch()
        try:
            for event in stream.stream(
                list_fn,
                namespace,
                field_selector=selector,
                resource_version=version,
                timeout_seconds=max(1, int(min(WATCH_CHUNK_SECONDS, remaining))),
            ):
                if event["type"] == "ERROR":
                    break  # e.g. 410 Gone delivered in-stream: re-list
                if event["type"] == "DELETED":
                    raise ApplicationError(f"{what} {namespace}/{name} was deleted while waiting", type=NOT_FOUND)
                obj = event["object"]
                version = obj.metadata.resource_version
                last = _judged(judge, obj, what, version)
                if last.done:
                    stream.stop()
                    return obj
                if time.monotonic() > deadline:
                    stream.stop()
                    break
        except ApiException as exc:
            if exc.status != 410:
                raise client.translate(exc, f"watch {what}") from None
        except (urllib3.exceptions.HTTPError, OSError):
            time.sleep(0.2)  # dropped watch: re-list and go on
        if time.monotonic() > deadline:
            break
    raise ApplicationError(
        f"timed out after {timeout_seconds:g}s waiting for {what} {namespace}/{name}: {last.progress}",
        type=WAIT_TIMEOUT,
        non_retryable=True,
    )


def _judged(judge: Callable[[Any], Verdict], obj: Any, what: str, version: str | None) -> Verdict:
    verdict = judge(obj)
    heartbeat(verdict.progress, version)
    if verdict.failed:
        raise ApplicationError(f"{what} {obj.metadata.name}: {verdict.failed}", type=WAIT_FAILED, non_retryable=True)
    return verdict


def wait_for_resource(
    discovery: KindDiscovery,
    served: ServedKind,
    namespace: str,
    name: str,
    judge: Callable[[dict[str, Any]], Verdict],
    timeout_seconds: float,
) -> dict[str, Any]:
    """`wait_for_object` for any kind the cluster serves (discovery + plain dicts): block until
    `judge(obj)` is done (returns the object) or failed/timeout (raises). Lists, then watches from
    the list's resourceVersion, re-listing after a dropped watch or a 410 Gone."""
    client = discovery.client
    deadline = time.monotonic() + timeout_seconds
    selector = f"metadata.name={name}"
    what = served.describe(name, namespace)
    last = Verdict(done=False, progress="not observed yet")
    while True:
        listing = discovery.request(
            "GET", served.path(namespace=namespace or None), field_selector=selector, what=f"list {what}"
        )
        items = listing.get("items") or []
        if not items:
            raise ApplicationError(f"{what} does not exist (deleted?)", type=NOT_FOUND, non_retryable=True)
        version = (listing.get("metadata") or {}).get("resourceVersion")
        # Items of a list carry no kind or apiVersion on a real API server; the judge needs them.
        current = {"apiVersion": served.api_version, "kind": served.kind, **items[0]}
        last = _judged_dict(judge, current, what, version)
        if last.done:
            return current
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        stream = watch.Watch()
        try:
            for event in discovery.dynamic.watch(
                served.resource,
                namespace=namespace or None,
                name=name,
                resource_version=version,
                timeout=max(1, int(min(WATCH_CHUNK_SECONDS, remaining))),
                watcher=stream,
            ):
                if event["type"] == "ERROR":
                    break  # e.g. 410 Gone delivered in-stream: re-list
                if event["type"] == "DELETED":
                    raise ApplicationError(f"{what} was deleted while waiting", type=NOT_FOUND)
                obj = {"apiVersion": served.api_version, "kind": served.kind, **event["raw_object"]}
                version = (obj.get("metadata") or {}).get("resourceVersion")
                last = _judged_dict(judge, obj, what, version)
                if last.done:
                    stream.stop()
                    return dict(obj)
                if time.monotonic() > deadline:
                    stream.stop()
                    break
        except ApiException as exc:
            if exc.status != 410:
                raise client.translate(exc, f"watch {what}") from None
        except (urllib3.exceptions.HTTPError, OSError):
            time.sleep(0.2)  # dropped watch: re-list and go on
        if time.monotonic() > deadline:
            break
    raise ApplicationError(
        f"timed out after {timeout_seconds:g}s waiting for {what}: {last.progress}",
        type=WAIT_TIMEOUT,
        non_retryable=True,
    )


def _judged_dict(judge: Callable[[dict[str, Any]], Verdict], obj: dict[str, Any], what: str, version: Any) -> Verdict:
    verdict = judge(obj)
    heartbeat(f"{what}: {verdict.progress}", version)
    if verdict.failed:
        raise ApplicationError(f"{what}: {verdict.failed}", type=WAIT_FAILED, non_retryable=True)
    return verdict

"""Object storage with one cluster-wide resourceVersion, a bounded event history and watchers.

Like etcd behind a real API server, every write takes the next value of a single counter, so a
client can list at some resourceVersion and watch "from" it without missing or repeating an event.
The history is bounded; a watch from before its start is answered with 410 Expired, the same
contract as https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes

Everything here runs on the server's event loop thread, so there is no locking.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesim.errors import expired

Obj = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Event:
    rv: int
    key: str  # resource storage key, e.g. "pods" or "deployments.apps"
    type: str  # ADDED, MODIFIED or DELETED
    obj: Obj
    prev: Obj | None  # the object before this change, so filtered watches can see objects leave


class Watcher:
    """One open watch: receives events for its resource (and namespace) until closed."""

    def __init__(self, key: str, namespace: str | None) -> None:
        self.key = key
        self.namespace = namespace
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def wants(self, event: Event) -> bool:
        if event.key != self.key:
            return False
        return self.namespace is None or event.obj["metadata"].get("namespace") == self.namespace

    def close(self) -> None:
        """End the stream (the client's Watch resumes from the last resourceVersion it saw)."""
        self.queue.put_nowait(None)


class Store:
    def __init__(self, history_limit: int = 10_000) -> None:
        self.rv = 0
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {}
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        # Watches may resume from any resourceVersion >= this; older ones get 410.
        self.oldest_watchable = 0
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self.dirty = False

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get(key, {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, key: str, namespace: str | None = None) -> list[Obj]:
        bucket = self._objects.get(key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [copy.deepcopy(bucket[k]) for k in keys]

    def iter_all(self) -> Iterator[tuple[str, Obj]]:
        for key, bucket in self._objects.items():
            for obj in bucket.values():
                yield key, obj

    def find_uid(self, uid: str) -> tuple[str, Obj] | None:
        for key, obj in self.iter_all():
            if obj["metadata"].get("uid") == uid:
                return key, copy.deepcopy(obj)
        return None

    # -- writes --------------------------------------------------------------------------------------

    def create(self, key: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        meta.setdefault("uid", new_uid())
        meta.setdefault("creationTimestamp", now_rfc3339())
        return self._put(key, obj, "ADDED", None)

    def update(self, key: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        prev = self._objects.get(key, {}).get((meta.get("namespace", ""), meta["name"]))
        return self._put(key, obj, "MODIFIED", prev)

    def delete(self, key: str, namespace: str, name: str) -> Obj | None:
        prev = self._objects.get(key, {}).pop((namespace, name), None)
        if prev is None:
            return None
        gone = copy.deepcopy(prev)
        self.rv += 1
        # A DELETED event carries the object at the resourceVersion of the deletion.
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(Event(self.rv, key, "DELETED", gone, prev))
        return copy.deepcopy(gone)

    def _put(self, key: str, obj: Obj, kind: str, prev: Obj | None) -> Obj:
        self.rv += 1
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        meta["resourceVersion"] = str(self.rv)
        self._objects.setdefault(key, {})[(meta.get("namespace", ""), meta["name"])] = stored
        self._emit(Event(self.rv, key, kind, stored, prev))
        return copy.deepcopy(stored)

    def _emit(self, event: Event) -> None:
        self.dirty = True
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self.oldest_watchable = self._history.popleft().rv
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        for listener in list(self._listeners):
            listener(event)

    # -- watching ------------------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def watch(self, key: str, namespace: str | None, since: int) -> Watcher:
        """Open a watch delivering every matching event after resourceVersion `since`."""
        if since < self.oldest_watchable:
            raise expired(since, self.oldest_watchable)
        watcher = Watcher(key, namespace)
        for event in self._history:
            if event.rv > since and watcher.wants(event):
                watcher.queue.put_nowait(event)
        self._watchers.add(watcher)
        return watcher

    def watch_count(self) -> int:
        return len(self._watchers)

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def drop_watches(self) -> int:
        """Close every open watch, as an apiserver restart or a load balancer timeout would."""
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.close()
        self._watchers.clear()
        return len(watchers)

    def compact(self) -> None:
        """Forget the event history, so watches from any earlier resourceVersion get 410 Gone."""
        self._history.clear()
        self.oldest_watchable = self.rv

    # -- persistence ---------------------------------------------------------------------------------

    def dump(self) -> Obj:
        return {
            "resourceVersion": self.rv,
            "objects": {key: list(bucket.values()) for key, bucket in self._objects.items()},
        }

    def load(self, data: Obj) -> None:
        self.rv = int(data.get("resourceVersion", 0))
        self.oldest_watchable = self.rv  # no history survives a restart, as with a compacted etcd
        for key, objs in data.get("objects", {}).items():
            bucket = self._objects.setdefault(key, {})
            for obj in objs:
                meta = obj["metadata"]
                bucket[(meta.get("namespace", ""), meta["name"])] = obj

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.dump()))
        os.replace(tmp, path)
        self.dirty = False

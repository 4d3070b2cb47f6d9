"""A content-addressed store on the worker for what is too large to travel through workflow history
(rendered manifests of a bakeManifest).

Why a store and not just a cap: a rendered chart is easily hundreds of KB (CRDs alone often are),
and Temporal warns at 256 KB per payload and fails at 2 MB. Capping would refuse ordinary charts;
so a render is written here under its SHA-256 and the workflow carries only the digest. Small
renders are *also* inlined in the artifact's `reference` (base64, Spinnaker's shape), so they work
on workers that do not share this store.

Objects are kept per application (`<root>/<application>/sha256/<hex>`): an artifact naming a digest
can only read renders of its own application. Writes are atomic (temp file + rename) and idempotent
(same content, same path), so a retried activity simply writes again. Workers that bake and workers
that deploy must share `store_dir` (a volume) for large renders; otherwise the deploy fails naming
the digest and the directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from activities.artifacts.errors import ARTIFACT_INVALID, ARTIFACT_NOT_FOUND, artifact_error

_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_APPLICATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def default_store_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gennaker" / "artifact-store"


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, application: str, digest: str) -> Path:
        match = _DIGEST.match(digest)
        if match is None:
            raise artifact_error(digest[:80], "not a sha256:<64 hex> digest", ARTIFACT_INVALID)
        if _APPLICATION.match(application) is None:
            raise artifact_error(digest, f"application name {application[:80]!r} is not usable here", ARTIFACT_INVALID)
        return self.root / application / "sha256" / match.group(1)

    def put(self, application: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self._path(application, digest)
        if path.is_file() and path.stat().st_size == len(data):
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".put-") as handle:
            handle.write(data)
            temporary = Path(handle.name)
        os.replace(temporary, path)
        return digest

    def get(self, application: str, digest: str) -> bytes:
        path = self._path(application, digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise artifact_error(
                digest,
                f"not in this worker's artifact store ({self.root}); workers that bake and deploy must share "
                "artifacts.store_dir",
                ARTIFACT_NOT_FOUND,
            ) from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise artifact_error(digest, f"stored content at {path} does not match its digest", ARTIFACT_INVALID)
        return data

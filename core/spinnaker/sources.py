"""Reading what people export from Spinnaker: one pipeline, a `spin pipeline list` array, or an
application export directory (`spin pipeline save`-style files, one pipeline per `.json`).

JSON is parsed as JSON (tabs and all); sizes and counts are bounded so hostile input cannot make the
importer work without end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_BYTES = 5 * 1024 * 1024  # one request or file
MAX_PIPELINES = 500
MAX_DEPTH = 64


class SourceError(ValueError):
    """Input that is not Spinnaker pipeline JSON; the message names the file and what is wrong."""


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limit:
            return depth
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return deepest


def pipelines_in(document: Any, label: str) -> list[tuple[str, dict[str, Any]]]:
    """The pipelines of one parsed document: an object, or an array of objects."""
    if _depth(document) > MAX_DEPTH:
        raise SourceError(f"{label}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(document, dict):
        if "stages" not in document and isinstance(document.get("pipelines"), list):
            document = document["pipelines"]  # an application dump {"pipelines": [...]}
        else:
            return [(label, document)]
    if isinstance(document, list):
        found = []
        for i, item in enumerate(document):
            if not isinstance(item, dict):
                raise SourceError(f"{label}[{i}]: a pipeline must be a JSON object")
            found.append((f"{label}[{i}]", item))
        return found
    raise SourceError(f"{label}: expected a pipeline object or an array of pipelines")


def parse_json(text: str | bytes, label: str) -> Any:
    if len(text) > MAX_BYTES:
        raise SourceError(f"{label}: larger than the {MAX_BYTES // (1024 * 1024)} MB limit")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"{label}: not valid JSON: {exc}") from None


def read_path(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """A file, or every `*.json` under a directory (sorted, so imports are repeatable)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.json") if p.is_file())
        if not files:
            raise SourceError(f"{path}: no .json files")
    elif path.is_file():
        files = [path]
    else:
        raise SourceError(f"{path}: no such file or directory")
    found: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        if file.stat().st_size > MAX_BYTES:
            raise SourceError(f"{file}: larger than the {MAX_BYTES // (1024 * 1024)} MB limit")
        found += pipelines_in(parse_json(file.read_bytes(), str(file)), str(file))
        if len(found) > MAX_PIPELINES:
            raise SourceError(f"{path}: more than {MAX_PIPELINES} pipelines")
    return found

"""`gennaker import spinnaker`: Spinnaker pipeline JSON → Gennaker pipelines plus a report.

Entry points (the CLI, `POST /import/spinnaker` and the benchmark all use these):
- `import_pipelines(found, options)`: pipelines already read (`sources.read_path`, `sources.pipelines_in`).
- `import_path(path, options)`: a file or an application export directory.

Each result says what was mapped, what was dropped (and that dropping it changes nothing) and what
could not be translated, with the JSON path; the pipelines are validated with Gennaker's own
parser and the leftover-SpEL lint, so "valid" means a person can save and run them as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.spinnaker.convert import convert, pipeline_names
from core.spinnaker.fields import ImportOptions
from core.spinnaker.report import ImportedPipeline, ImportResult, ReportItem
from core.spinnaker.sources import MAX_BYTES, MAX_PIPELINES, SourceError, pipelines_in, read_path

__all__ = [
    "MAX_BYTES",
    "MAX_PIPELINES",
    "ImportOptions",
    "ImportResult",
    "ImportedPipeline",
    "ReportItem",
    "SourceError",
    "import_path",
    "import_pipelines",
    "parse_mapping",
    "pipelines_in",
]


def _validate(result: ImportedPipeline) -> None:
    from workflows.model import PipelineInvalid, parse_pipeline
    from workflows.spel_lint import spel_problems

    if result.pipeline is None:
        return
    problems = [f"{field}: {message}" for field, message in spel_problems(result.pipeline)]
    try:
        parse_pipeline(result.pipeline)
    except PipelineInvalid as exc:
        problems += [f"{e.field}: {e.message}" for e in exc.errors]
    result.problems = problems
    result.valid = not problems


def import_pipelines(found: list[tuple[str, dict[str, Any]]], options: ImportOptions) -> ImportResult:
    if len(found) > MAX_PIPELINES:
        raise SourceError(f"more than {MAX_PIPELINES} pipelines in one import")
    names = pipeline_names([data for _, data in found], options)
    result = ImportResult()
    for source, data in found:
        imported = convert(data, source, options, names)
        _validate(imported)
        result.pipelines.append(imported)
    return result


def import_path(path: Path, options: ImportOptions) -> ImportResult:
    return import_pipelines(read_path(path), options)


def parse_mapping(items: list[str], what: str) -> dict[str, str]:
    """`old=new` pairs (--account-map, --namespace-map) → a dict; SourceError names a bad one."""
    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise SourceError(f"{what} {item!r} must look like old=new")
        mapping[old.strip()] = new.strip()
    return mapping

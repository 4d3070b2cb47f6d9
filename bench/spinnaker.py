"""`python -m bench spinnaker DIR`: how much of a Spinnaker export imports and validates as is.

Figures: pipelines found, imported (every stage has a Gennaker type), validated (passes Gennaker's
parser and the leftover-SpEL lint), SpEL expressions left untranslated; plus the time taken.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from core.spinnaker import ImportOptions, import_path
from workflows.stages.registry import registered_stage_types


def spinnaker_benchmark(directory: Path, application: str | None = None) -> dict[str, int]:
    registered_stage_types()  # load the stage modules first: the figure is the import, not Python's imports
    started = time.perf_counter()
    result = import_path(directory, ImportOptions(application=application))
    elapsed = time.perf_counter() - started
    for imported in result.pipelines:
        state = "valid" if imported.valid else ("imported" if imported.complete else "not imported")
        untranslated = len(imported.untranslated())
        print(f"{imported.source}: {imported.name}: {state}, {untranslated} untranslated")
    print(f"{'seconds':>24}: {elapsed:.3f}")
    summary = result.summary()
    print(json.dumps(summary))
    return summary

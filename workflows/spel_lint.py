"""Catch at submission what `gennaker import spinnaker` would have caught.

`spel_problems(pipeline)` looks at a raw pipeline dict (before or after `parse_pipeline`) and returns
(field path, message) for:
- a string holding a Spinnaker SpEL `${ … }`: Gennaker evaluates only `${{ … }}` (CEL), and text that
  looks like an expression must never pass through as literal text;
- an expression that reads `parameters.<name>` (or `parameters["<name>"]`) the pipeline does not
  declare: it could only fail at run time.

Stages with `skipExpressionEvaluation: true` send their strings as written, so they are not linted.
Paths follow `workflows.model`: `stages[<refId>].field`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

_SPEL = re.compile(r"\$\{(?!\{)")
_CEL = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_PARAMETER = re.compile(r"""\bparameters\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\])""")
# Fields holding a condition that may be bare CEL (no `${{ }}` around it).
_CONDITION = re.compile(r"(\.stageEnabled\.expression|\.context\.expression)$")

SPEL_MESSAGE = (
    "holds `${ … }`, Spinnaker's SpEL syntax, which Gennaker does not evaluate (it would stay literal text): "
    "translate the pipeline with `gennaker import spinnaker`, or write the expression as `${{ … }}` (CEL)"
)


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{path}[{i}]")


def _pipeline_strings(pipeline: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in pipeline.items():
        if key == "stages" and isinstance(value, list):
            for index, stage in enumerate(value):
                if not isinstance(stage, Mapping):
                    continue
                ref = stage.get("refId")
                label = f"stages[{ref}]" if isinstance(ref, str) and ref else f"stages[{index}]"
                if stage.get("skipExpressionEvaluation") is True:
                    continue
                yield from _strings(dict(stage), label)
        else:
            yield from _strings(value, str(key))


def _expressions(path: str, text: str) -> list[str]:
    found = [m.group(1) for m in _CEL.finditer(text)]
    if not found and _CONDITION.search(path):
        found = [text]
    return found


def _declared(pipeline: Mapping[str, Any]) -> set[str]:
    names = set()
    for parameter in pipeline.get("parameters") or []:
        if isinstance(parameter, Mapping) and isinstance(parameter.get("name"), str):
            names.add(parameter["name"])
    return names


def spel_problems(pipeline: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) for leftover SpEL and undeclared parameters; [] when clean."""
    if not isinstance(pipeline, Mapping):
        return []  # parse_pipeline says what is wrong with it
    declared = _declared(pipeline)
    problems: list[tuple[str, str]] = []
    for path, text in _pipeline_strings(pipeline):
        if _SPEL.search(text):
            problems.append((path, SPEL_MESSAGE))
        for expression in _expressions(path, text):
            for match in _PARAMETER.finditer(expression):
                name = next(g for g in match.groups() if g is not None)
                if name not in declared:
                    known = ", ".join(sorted(declared)) or "none"
                    problems.append(
                        (path, f"reads parameters.{name}, which this pipeline does not declare (declared: {known})")
                    )
    return problems


def reject_spel(pipeline: Mapping[str, Any]) -> None:
    """Raise PipelineInvalid (a 422 / exit 2) listing `spel_problems`; call it where pipelines are
    submitted, before `parse_pipeline` (whose type errors would otherwise hide the SpEL pointer)."""
    from workflows.model import FieldError, PipelineInvalid

    problems = spel_problems(pipeline)
    if problems:
        raise PipelineInvalid([FieldError(field=field, message=message) for field, message in problems])

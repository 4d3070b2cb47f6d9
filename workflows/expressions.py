"""`${{ … }}` expressions in pipeline strings, evaluated with CEL.

CEL (common-expression-language, a binding of the Rust `cel` interpreter) is side-effect free and has
no clock or randomness, so evaluating inside workflow code is deterministic on replay.

Rules people rely on:
- A string that is exactly one expression keeps the result's type: `"${{ parameters.replicas }}"`
  gives an int where the field wants an int.
- Any other string interpolates: `"shop-${{ parameters.env }}"`; booleans print as `true`/`false`,
  null as an empty string, lists and maps as JSON.
- Names with dashes need index syntax: `stages["deploy-staging"].outputs.image`.
- An expression that fails raises ExpressionError naming the expression; it never passes through as
  raw text.
- Every expression is bounded in length, nesting, comprehension depth and cost, and in the size of
  its result (workflows/expression_limits.py); one over a limit fails naming the limit — at
  submission when it is written in the pipeline, before evaluation otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import cel

from workflows.expression_limits import ExpressionTooCostly, check_result, check_source

_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


class ExpressionError(Exception):
    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"expression ${{{{ {expression.strip()} }}}} failed: {reason}")
        self.expression = expression.strip()
        self.reason = reason


def contains_expression(value: Any) -> bool:
    if isinstance(value, str):
        return _EXPRESSION.search(value) is not None
    if isinstance(value, Mapping):
        return any(contains_expression(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_expression(v) for v in value)
    return False


def syntax_errors(text: str) -> list[str]:
    """Parse every expression in `text` without evaluating it; used to reject pipelines early."""
    errors = []
    for match in _EXPRESSION.finditer(text):
        source = match.group(1).strip()
        if not source:
            errors.append("empty expression ${{ }}")
            continue
        try:
            check_source(source)
        except ExpressionTooCostly as exc:
            errors.append(f"expression ${{{{ {_shortened(source)} }}}} is over a limit: {exc}")
            continue
        try:
            cel.compile(source)
        except Exception as exc:  # the binding raises several types; all mean "does not parse"
            errors.append(f"expression ${{{{ {source} }}}} does not parse: {_first_line(exc)}")
    return errors


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _shortened(source: str, limit: int = 120) -> str:
    return source if len(source) <= limit else source[:limit] + "…"


def evaluate_source(source: str, context: Mapping[str, Any]) -> Any:
    """Evaluate one bare CEL expression, within the limits of workflows/expression_limits.py."""
    try:
        check_source(source, context)
    except ExpressionTooCostly as exc:
        raise ExpressionError(_shortened(source), f"over a limit: {exc}") from None
    try:
        value = _to_plain(cel.evaluate(source, dict(context)))
    except Exception as exc:  # KeyError (missing key), ZeroDivisionError, … all fail the expression
        raise ExpressionError(source, _first_line(exc)) from None
    try:
        check_result(value)
    except ExpressionTooCostly as exc:
        raise ExpressionError(_shortened(source), f"over a limit: {exc}") from None
    return value


def _to_plain(value: Any) -> Any:
    # CEL timestamps and bytes come back as Python objects that do not survive JSON payloads.
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _whole_expression(text: str) -> str | None:
    """The source of `text` if it is exactly one `${{ }}` (surrounding blanks allowed), else None."""
    stripped = text.strip()
    match = _EXPRESSION.match(stripped)
    return match.group(1).strip() if match and match.end() == len(stripped) else None


def evaluate_text(text: str, context: Mapping[str, Any]) -> Any:
    whole = _whole_expression(text)
    if whole is not None:
        return evaluate_source(whole, context)
    return _EXPRESSION.sub(lambda m: _as_text(evaluate_source(m.group(1).strip(), context)), text)


def evaluate_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Resolve expressions anywhere inside strings, lists and maps."""
    if isinstance(value, str):
        return evaluate_text(value, context) if _EXPRESSION.search(value) else value
    if isinstance(value, Mapping):
        return {k: evaluate_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_value(v, context) for v in value]
    return value


def evaluate_condition(text: str, context: Mapping[str, Any]) -> bool:
    """A condition may be written bare (`parameters.env == "prod"`) or wrapped in `${{ }}`."""
    source = _whole_expression(text) or text.strip()
    result = evaluate_source(source, context)
    if not isinstance(result, bool):
        raise ExpressionError(source, f"must be true or false, got {_as_text(result)!r}")
    return result


def condition_syntax_errors(text: str) -> list[str]:
    whole = _whole_expression(text)
    return syntax_errors(text if whole is not None else "${{" + text.strip() + "}}")

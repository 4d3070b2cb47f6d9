"""The workflow's current details in the Temporal UI: which stages run and what each waits for.

Markdown (the UI renders it), stored in clear (core/codec.py marks the UI's metadata query answer):
it names stages, their types and what their own `ctx.set_details` said; a waiting judgment adds its
instructions and options as declared in the pipeline (expressions unevaluated, so no parameter
value reaches it) and how to answer it, from the CLI or the console. A finished execution shows its
failure message, which the history already holds in clear as the workflow's failure.
"""

from __future__ import annotations

from collections.abc import Mapping

from workflows.stages.base import StageConfig
from workflows.state import ExecutionState, ExecutionStatus, StageStatus

MAX_CHARS = 4000  # a busy fan-out still reads as a page, not a wall


def console_path(execution_id: str) -> str:
    # Execution ids are `<application>.<pipeline>.<suffix>` (names checked on submit): no quoting.
    return f"/console/executions/{execution_id}"


def current_details(state: ExecutionState, declared: Mapping[str, StageConfig]) -> str:
    head = f"**{state.application} / {state.pipeline}** · {state.status.value}"
    if state.paused:
        head += " (paused: `gennaker resume " + state.id + "`)"
    if state.status not in (ExecutionStatus.RUNNING, ExecutionStatus.WAITING, ExecutionStatus.PAUSED):
        done = sum(1 for s in state.stages if s.status is StageStatus.SUCCEEDED)
        tail = f"\n\n{done} of {len(state.stages)} stages succeeded."
        if state.failure:
            tail += f"\n\nFailed: {state.failure}"
        return (head + tail)[:MAX_CHARS]
    lines = [head, ""]
    running = [s for s in state.stages if s.status is StageStatus.RUNNING]
    if not running:
        lines.append("No stage is running." if state.status is not ExecutionStatus.WAITING else "Waiting to start.")
    judgments: list[str] = []
    for stage in running:
        line = f"- **{stage.name}** ({stage.type})"
        if stage.details:
            line += f": {stage.details}"
        lines.append(line)
        gate = declared[stage.refId].judgment_gate() if stage.refId in declared else None
        if stage.waitingForJudgment and gate is not None:
            judgments += ["", f"**{stage.name}** waits for a judgment", ""]
            judgments += _judgment_lines(state.id, stage.refId, gate.instructions, gate.options)
    lines += judgments
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _judgment_lines(execution_id: str, ref_id: str, instructions: str | None, options: list[str]) -> list[str]:
    lines = []
    if instructions:
        lines.append(f"- instructions: {instructions}")
    option = f" --option {options[0]}" if options else ""
    if options:
        lines.append(f"- options: {', '.join(options)}")
    lines.append(f"- approve: `gennaker approve {execution_id} {ref_id}{option}`")
    lines.append(f"- or in the Gennaker console: `{console_path(execution_id)}` on the gateway")
    return lines

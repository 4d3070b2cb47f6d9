"""Showing one execution: its status view, live `--follow`, the exit code it ends with.

Shared by `status`, `run --follow` and the `servergroup` commands. Ctrl-C while following only
stops watching: the execution is a durable workflow and keeps running, so the CLI says so, prints
how to cancel it, and exits 130 (the shell's code for SIGINT).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from workers.gateway_client import EXIT_OK, EXIT_PIPELINE_FAILED, CliError, GatewayClient
from workers.render import FINAL_STATUSES, JudgmentPrompt, execution_view, show

EXIT_INTERRUPTED = 130
POLL_SECONDS = 0.5


def judgment_prompts(gateway: GatewayClient, state: dict[str, Any]) -> dict[str, JudgmentPrompt]:
    """Instructions and options of the waiting judgments, read from the saved pipeline revision the
    execution runs. The gateway has no route for an inline execution's spec, so for those the view
    falls back to the options the stage reports in its details."""
    waiting = [s["refId"] for s in state["stages"] if s.get("waitingForJudgment")]
    if not waiting or state.get("revision") is None:
        return {}
    try:
        saved = gateway.request(
            "GET",
            f"/applications/{state['application']}/pipelines/{state['pipeline']}",
            params={"revision": state["revision"]},
        )
    except CliError:
        return {}  # deleted since, or not readable: the table still shows what the state knows
    prompts = {}
    for stage in saved["config"].get("stages") or []:
        if isinstance(stage, dict) and stage.get("refId") in waiting:
            options = [o.get("value") if isinstance(o, dict) else o for o in stage.get("judgmentInputs") or []]
            prompts[stage["refId"]] = JudgmentPrompt(
                instructions=stage.get("instructions"), options=[str(o) for o in options if o is not None]
            )
    return prompts


def print_execution(gateway: GatewayClient, state: dict[str, Any], console: Console) -> None:
    show(console, execution_view(state, judgment_prompts(gateway, state)))


def exit_code_for(state: dict[str, Any], errors: Console) -> int:
    """0 when it succeeded, 1 (with the reason on stderr) when it failed or was canceled."""
    if state["status"] == "SUCCEEDED":
        return EXIT_OK
    reason = state.get("failure") or state.get("cancelReason")
    if reason:
        errors.print(f"[red]{escape(state['status'])}:[/red] {escape(reason)}", highlight=False)
    return EXIT_PIPELINE_FAILED


def interrupted_follow(execution_id: str, errors: Console) -> int:
    """What Ctrl-C during `--follow` prints; returns the exit code (130)."""
    errors.print(
        f"\nstopped following; execution [bold]{escape(execution_id)}[/bold] keeps running.\n"
        f"  watch it:  gennaker status {escape(execution_id)} --follow\n"
        f"  cancel it: gennaker cancel {escape(execution_id)}",
        highlight=False,
    )
    return EXIT_INTERRUPTED


def follow_execution(gateway: GatewayClient, execution_id: str, console: Console, errors: Console) -> int:
    """Show the execution live until it ends; returns the exit code (0, 1, or 130 on Ctrl-C)."""
    try:
        state = _watch(gateway, execution_id, console)
    except KeyboardInterrupt:
        return interrupted_follow(execution_id, errors)
    return exit_code_for(state, errors)


def _watch(gateway: GatewayClient, execution_id: str, console: Console) -> dict[str, Any]:
    state: dict[str, Any] = gateway.request("GET", f"/executions/{execution_id}")
    if not console.is_terminal:
        # Piped: no live redraws, just the final table (untruncated, tab-separated).
        while state["status"] not in FINAL_STATUSES:
            time.sleep(POLL_SECONDS)
            state = gateway.request("GET", f"/executions/{execution_id}")
        print_execution(gateway, state, console)
        return state

    from rich.live import Live

    prompts: dict[str, JudgmentPrompt] = {}
    asked: set[str] = set()  # waiting judgments whose prompt was looked up (once each)

    def view(current: dict[str, Any]) -> Any:
        waiting = {s["refId"] for s in current["stages"] if s.get("waitingForJudgment")}
        if waiting - asked:
            prompts.update(judgment_prompts(gateway, current))
            asked.update(waiting)
        return execution_view(current, prompts)

    with Live(view(state), console=console, refresh_per_second=4) as live:
        while state["status"] not in FINAL_STATUSES:
            time.sleep(POLL_SECONDS)
            state = gateway.request("GET", f"/executions/{execution_id}")
            live.update(view(state))
    return state

"""Rich tables for executions, shared by `status`, `run --follow` and `list`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

FINAL_STATUSES = {"SUCCEEDED", "TERMINAL", "CANCELED", "TERMINATED"}
STATUS_STYLE = {
    "SUCCEEDED": "green",
    "RUNNING": "cyan",
    "PAUSED": "yellow",
    "TERMINAL": "red",
    "FAILED_CONTINUE": "yellow",
    "STOPPED": "yellow",
    "CANCELED": "magenta",
    "SKIPPED": "dim",
    "NOT_STARTED": "dim",
}


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    began = datetime.fromisoformat(start)
    finished = datetime.fromisoformat(end) if end else datetime.now(began.tzinfo)
    return f"{(finished - began).total_seconds():.1f}s"


def execution_table(state: dict[str, Any]) -> Table:
    title = f"{state['application']}/{state['pipeline']}  {state['id']}  {_styled(state['status'])}"
    table = Table(title=title, title_justify="left")
    for column in ("stage", "type", "status", "time", "details"):
        table.add_column(column)
    for stage in state["stages"]:
        details = stage.get("details") or ""
        if stage.get("error"):
            details = stage["error"]["message"]
        elif stage.get("waitingForJudgment"):
            details = f"waiting for judgment: gennaker approve {state['id']} {stage['refId']}"
        name, ref = escape(stage["name"]), escape(stage["refId"])
        table.add_row(
            f"{name} [dim]({ref})[/dim]" if name != ref else ref,
            stage["type"],
            _styled(stage["status"]),
            _duration(stage.get("startTime"), stage.get("endTime")),
            escape(details),
        )
    return table


def executions_table(executions: list[dict[str, Any]]) -> Table:
    table = Table()
    table.add_column("id", no_wrap=True)
    for column in ("application", "pipeline", "status", "trigger", "started"):
        table.add_column(column)
    for item in executions:
        table.add_row(
            escape(item["id"]),
            item.get("application") or "",
            item.get("pipeline") or "",
            _styled(item.get("status") or item.get("temporalStatus") or "?"),
            item.get("trigger") or "",
            (item.get("startTime") or "")[:19],
        )
    return table


def clusters_table(found: dict[str, Any]) -> Table:
    table = Table(title=f"clusters of {found['application']}", title_justify="left")
    for column in ("account", "namespace", "server group", "traffic", "ready", "image"):
        table.add_column(column)
    for cluster in found["clusters"]:
        account = cluster["account"] + (" [dim](simulated)[/dim]" if cluster.get("simulated") else "")
        for group in cluster["serverGroups"]:
            table.add_row(
                account,
                cluster["namespace"],
                escape(group["name"]),
                "[green]ENABLED[/]" if group["enabled"] else "[dim]disabled[/]",
                f"{group['ready']}/{group['desired']}",
                escape(", ".join(group["images"])),
            )
    return table

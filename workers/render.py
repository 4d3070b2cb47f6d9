"""What the CLI prints: executions, clusters, pipelines, accounts as tables.

Every table is a `View`: on a terminal it is a rich table sized to the terminal's width; piped
(not a TTY) it is plain tab-separated text, one row per line, never truncated or wrapped, so
`gennaker list | cut -f1` works. Print views with `show(console, view)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
# Stage outputs worth a glance in the table, in this order (the rest stay in `status --json`).
KEY_OUTPUTS = (
    "serverGroup",
    "image",
    "previousDesired",
    "desired",
    "ready",
    "enabled",
    "destroyed",
    "judgmentInput",
    "judgedBy",
    "comment",
)


@dataclass
class View:
    """A table plus lines printed under it (warnings, prompts). Cells hold rich markup."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str | None = None
    notes: list[str] = field(default_factory=list)
    wide: set[str] = field(default_factory=set)  # columns that may wrap (fold) on a narrow terminal

    def table(self) -> Table:
        table = Table(title=self.title, title_justify="left")
        for column in self.columns:
            if column in self.wide:
                table.add_column(column, overflow="fold", min_width=24)
            else:
                table.add_column(column, no_wrap=False)
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain_lines(self) -> list[str]:
        lines = [f"# {_plain(self.title)}"] if self.title else []
        lines.append("\t".join(self.columns))
        lines.extend("\t".join(_cell(value) for value in row) for row in self.rows)
        lines.extend(_plain(note) for note in self.notes)
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Used by `Live` (follow mode, always a terminal) and by plain console.print.
        yield self.table()
        for note in self.notes:
            yield Text.from_markup(note)


def show(console: Console, view: View) -> None:
    """A rich table at the terminal's width, or tab-separated text when output is not a terminal."""
    if console.is_terminal:
        console.print(view)
    else:
        console.file.write("\n".join(view.plain_lines()) + "\n")
        console.file.flush()


def _plain(markup: str | None) -> str:
    return Text.from_markup(markup or "").plain


def _cell(markup: str) -> str:
    # A tab or newline inside a cell would break the one-row-per-line promise.
    return re.sub(r"[\t\r\n]+", " ", _plain(markup))


def _styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def _duration(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    began = datetime.fromisoformat(start)
    finished = datetime.fromisoformat(end) if end else datetime.now(began.tzinfo)
    return f"{(finished - began).total_seconds():.1f}s"


def _when(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


# ---- executions ------------------------------------------------------------------------------------


@dataclass
class JudgmentPrompt:
    """What a waiting judgment asks (from the pipeline's spec; the execution state does not carry it)."""

    instructions: str | None
    options: list[str]


def key_outputs(outputs: dict[str, Any]) -> str:
    parts = []
    for key in KEY_OUTPUTS:
        value = outputs.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _options_from_details(details: str | None) -> list[str]:
    # The judgment stage writes "waiting for judgment (options: a, b)" as its current details.
    found = re.search(r"\(options: ([^)]*)\)", details or "")
    return [o.strip() for o in found.group(1).split(",") if o.strip()] if found else []


def _stage_details(stage: dict[str, Any], prompts: dict[str, JudgmentPrompt]) -> str:
    if stage.get("error"):
        return f"[red]{escape(stage['error']['message'])}[/red]"
    if stage.get("waitingForJudgment"):
        prompt = prompts.get(stage["refId"])
        options = prompt.options if prompt else _options_from_details(stage.get("details"))
        return "waiting for judgment" + (f": {escape(', '.join(options))}" if options else "")
    shown = key_outputs(stage.get("outputs") or {})
    if stage.get("status") in FINAL_STATUSES or stage.get("status") == "SKIPPED" or not stage.get("details"):
        return escape(shown)
    return escape(" ".join(part for part in (stage.get("details") or "", shown) if part))


def _judgment_notes(state: dict[str, Any], prompts: dict[str, JudgmentPrompt]) -> list[str]:
    notes = []
    for stage in state["stages"]:
        if not stage.get("waitingForJudgment"):
            continue
        ref = stage["refId"]
        prompt = prompts.get(ref)
        options = prompt.options if prompt else _options_from_details(stage.get("details"))
        notes.append(f"[yellow]judgment {escape(ref)} is waiting[/yellow]")
        if prompt and prompt.instructions:
            notes.append(f"  instructions: {escape(prompt.instructions)}")
        if options:
            notes.append(f"  options: {escape(', '.join(options))}")
        choose = f" --option {escape(options[0])}" if options else ""
        notes.append(f"  approve: gennaker approve {escape(state['id'])} {escape(ref)}{choose}")
        notes.append(f"  stop:    gennaker approve {escape(state['id'])} {escape(ref)} --stop")
    return notes


def _execution_notes(state: dict[str, Any]) -> list[str]:
    notes = []
    if state.get("failure"):
        notes.append(f"[red]failure:[/red] {escape(state['failure'])}")
    if state.get("cancelReason") or state.get("canceledBy"):
        by = f" by {state['canceledBy']}" if state.get("canceledBy") else ""
        notes.append(f"[magenta]canceled{escape(by)}:[/magenta] {escape(state.get('cancelReason') or '')}".rstrip())
    for failure in state.get("notificationFailures") or []:
        where = f" (stage {failure['stage']})" if failure.get("stage") else ""
        notes.append(
            f"[yellow]notification not delivered:[/yellow] {escape(failure['event'])} via "
            f"{escape(failure['channel'])} to {escape(failure['address'])}{escape(where)}: {escape(failure['reason'])}"
        )
    if state.get("triggerError"):
        notes.append(f"[yellow]downstream trigger failed:[/yellow] {escape(state['triggerError'])}")
    return notes


def execution_view(state: dict[str, Any], prompts: dict[str, JudgmentPrompt] | None = None) -> View:
    """An execution's stages with their key outputs or error, then failures, cancel and supersede
    reasons, undelivered notifications and what each waiting judgment asks."""
    prompts = prompts or {}
    view = View(
        columns=["stage", "type", "status", "time", "details"],
        title=f"{escape(state['application'])}/{escape(state['pipeline'])}  {escape(state['id'])}  "
        f"{_styled(state['status'])}",
        wide={"details"},
    )
    for stage in state["stages"]:
        name, ref = escape(stage["name"]), escape(stage["refId"])
        view.rows.append(
            [
                f"{name} [dim]({ref})[/dim]" if name != ref else ref,
                escape(stage["type"]),
                _styled(stage["status"]),
                _duration(stage.get("startTime"), stage.get("endTime")),
                _stage_details(stage, prompts),
            ]
        )
    view.notes = _execution_notes(state) + _judgment_notes(state, prompts)
    return view


def execution_table(state: dict[str, Any]) -> View:
    """Kept for callers of the earlier name."""
    return execution_view(state)


def executions_table(executions: list[dict[str, Any]]) -> View:
    view = View(columns=["id", "application", "pipeline", "status", "trigger", "started"])
    for item in executions:
        view.rows.append(
            [
                escape(item["id"]),
                escape(item.get("application") or ""),
                escape(item.get("pipeline") or ""),
                _styled(item.get("status") or item.get("temporalStatus") or "?"),
                escape(item.get("trigger") or ""),
                _when(item.get("startTime")),
            ]
        )
    return view


def clusters_table(found: dict[str, Any]) -> View:
    view = View(
        columns=["account", "namespace", "server group", "traffic", "ready", "image"],
        title=f"clusters of {escape(found['application'])}",
        wide={"image"},
    )
    for cluster in found["clusters"]:
        account = escape(cluster["account"]) + (" [dim](simulated)[/dim]" if cluster.get("simulated") else "")
        for group in cluster["serverGroups"]:
            view.rows.append(
                [
                    account,
                    escape(cluster["namespace"]),
                    escape(group["name"]),
                    "[green]ENABLED[/]" if group["enabled"] else "[dim]disabled[/]",
                    f"{group['ready']}/{group['desired']}",
                    escape(", ".join(group["images"])),
                ]
            )
    return view


# ---- saved pipelines, applications, accounts ---------------------------------------------------------


def pipelines_table(pipelines: list[dict[str, Any]]) -> View:
    view = View(columns=["application", "pipeline", "revision", "saved by", "saved at"])
    for item in pipelines:
        view.rows.append(
            [
                escape(item["application"]),
                escape(item["name"]),
                str(item["revision"]),
                escape(item.get("author") or ""),
                _when(item.get("createdAt")),
            ]
        )
    return view


def revisions_table(revisions: list[dict[str, Any]]) -> View:
    first = revisions[0] if revisions else {"application": "?", "name": "?"}
    view = View(
        columns=["revision", "change", "by", "at"],
        title=f"history of {escape(first['application'])}/{escape(first['name'])}",
    )
    for item in revisions:
        view.rows.append(
            [
                str(item["revision"]),
                "[red]deleted[/red]" if item.get("deleted") else "saved",
                escape(item.get("author") or ""),
                _when(item.get("createdAt")),
            ]
        )
    return view


def applications_table(applications: list[dict[str, Any]]) -> View:
    view = View(columns=["application", "pipelines", "names"], wide={"names"})
    for item in applications:
        names = item.get("pipelines") or []
        view.rows.append([escape(item["name"]), str(len(names)), escape(", ".join(names))])
    return view


def account_health(account: dict[str, Any]) -> str:
    if account.get("stale"):
        return "[yellow]stale[/yellow]"  # its worker stopped reporting
    if account.get("healthy"):
        return "[green]healthy[/green]"
    if not account.get("reachable"):
        return "[red]unreachable[/red]"
    if not account.get("authenticated"):
        return "[red]unauthenticated[/red]"
    return "[red]unhealthy[/red]"


def accounts_table(accounts: list[dict[str, Any]]) -> View:
    view = View(columns=["account", "kind", "health", "checked", "task queue", "last error"], wide={"last error"})
    for item in accounts:
        view.rows.append(
            [
                escape(item["name"]),
                escape(item.get("kind") or ""),
                account_health(item),
                _when(item.get("checkedAt")),
                escape(item.get("taskQueue") or ""),
                escape(item.get("lastError") or ""),
            ]
        )
    return view

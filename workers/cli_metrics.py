"""`gennaker metrics dora --app A [--since 30d] [--json]`: DORA figures through the gateway."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from workers.cli_common import DEFAULT_API, ApiUrl, User, console, errors, fail, gateway
from workers.gateway_client import EXIT_BAD_INPUT, CliError

metrics_app = typer.Typer(help="Delivery metrics computed from execution history.", no_args_is_help=True)


@metrics_app.command("dora")
def dora(
    application: Annotated[str, typer.Option("--app", help="Application")],
    since: Annotated[str, typer.Option("--since", help="Window: 30d, 12h, 4w (1h..366d)")] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Deployment frequency, lead time for changes, change failure rate and time to restore."""
    from core.observability.dora import SinceInvalid, parse_since  # only this command pays its import

    try:
        parse_since(since)  # answer a typo at once, without a round trip
    except SinceInvalid as exc:
        errors.print(f"[red]error:[/red] --since: {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    client = gateway(api, user)
    try:
        report = client.request("GET", f"/applications/{application}/dora", params={"since": since})
    except CliError as error:
        raise fail(error) from None
    finally:
        client.close()
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    console.print(dora_table(report))
    if report.get("truncated"):
        errors.print(f"[yellow]only the newest {report['executionsScanned']} executions were scanned[/yellow]")


def dora_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"DORA {report['application']} (last {report['since']})")
    for column in ("account", "deploys/day", "deploys", "lead time (median)", "change failure", "time to restore"):
        table.add_column(column)
    for row in [report["overall"], *report["accounts"]]:
        rate = row["changeFailureRate"]
        table.add_row(
            "all" if row["account"] == "*" else row["account"],
            f"{row['deploymentsPerDay']:.2f}",
            str(row["deployments"]),
            _duration(row["leadTimeSeconds"]),
            "-" if rate is None else f"{rate:.0%} ({row['failedChanges']}/{row['attempts']})",
            _duration(row["timeToRestoreSeconds"]) + (f" ({row['unrestored']} open)" if row["unrestored"] else ""),
        )
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"

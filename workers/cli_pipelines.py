"""`gennaker pipelines list|get|delete|history`, `gennaker applications`, `gennaker accounts`.

Saved pipelines are front50's: every save is an immutable revision and a delete is a tombstone
revision, so `history` shows who changed what when, deletions included.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal

import typer
import yaml

from workers.cli_common import DEFAULT_API, ApiUrl, AsJson, User, console, fail, gateway
from workers.gateway_client import CliError
from workers.render import accounts_table, applications_table, pipelines_table, revisions_table, show

pipelines_app = typer.Typer(help="Saved pipelines: list, get, delete, history.", no_args_is_help=True)

AppArg = Annotated[str, typer.Argument(metavar="APP", help="Application")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Pipeline name")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@pipelines_app.command("list")
def list_pipelines(
    application: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="Only this application's pipelines")
    ] = None,
    as_json: AsJson = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Saved pipelines (latest revision of each), of one application or of every one you may read."""
    try:
        client = gateway(api, user)
        if application is not None:
            names = [application]
        else:
            names = [item["name"] for item in client.request("GET", "/applications")]
        found = [p for name in names for p in client.request("GET", f"/applications/{name}/pipelines")]
    except CliError as error:
        raise fail(error) from None
    if as_json:
        _print_json(found)
    else:
        show(console, pipelines_table(found))


@pipelines_app.command("get")
def get_pipeline(
    application: AppArg,
    name: NameArg,
    revision: Annotated[int | None, typer.Option("--revision", metavar="N", min=1, help="Default: latest")] = None,
    output_format: Annotated[
        Literal["yaml", "json"], typer.Option("--format", metavar="yaml|json", help="Output format")
    ] = "yaml",
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Print a saved pipeline as written; `gennaker save` takes the output back."""
    params = {"revision": revision} if revision is not None else {}
    try:
        saved = gateway(api, user).request("GET", f"/applications/{application}/pipelines/{name}", params=params)
    except CliError as error:
        raise fail(error) from None
    if output_format == "json":
        _print_json(saved["config"])
        return
    by = f" by {saved['author']}" if saved.get("author") else ""
    sys.stdout.write(f"# {application}/{name} revision {saved['revision']}{by} at {saved.get('createdAt')}\n")
    sys.stdout.write(yaml.safe_dump(saved["config"], sort_keys=False, allow_unicode=True))


@pipelines_app.command("delete")
def delete_pipeline(application: AppArg, name: NameArg, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Delete a saved pipeline (and its cron schedules). Its history stays: see `history`."""
    try:
        gone = gateway(api, user).request("DELETE", f"/applications/{application}/pipelines/{name}")
    except CliError as error:
        raise fail(error) from None
    console.print(f"deleted {application}/{name} (revision {gone['revision']} is the deletion; history kept)")


@pipelines_app.command("history")
def pipeline_history(
    application: AppArg, name: NameArg, as_json: AsJson = False, api: ApiUrl = DEFAULT_API, user: User = None
) -> None:
    """Every revision of a pipeline, deletions included: who saved it and when."""
    try:
        revisions = gateway(api, user).request("GET", f"/applications/{application}/pipelines/{name}/revisions")
    except CliError as error:
        raise fail(error) from None
    if as_json:
        _print_json(revisions)
    else:
        show(console, revisions_table(revisions))


def list_applications(as_json: AsJson = False, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Applications with saved pipelines (only those you may read)."""
    try:
        found = gateway(api, user).request("GET", "/applications")
    except CliError as error:
        raise fail(error) from None
    if as_json:
        _print_json(found)
    else:
        show(console, applications_table(found))


def list_accounts(as_json: AsJson = False, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Kubernetes and registry accounts as their workers report them: kind, health, last error."""
    try:
        found = gateway(api, user).request("GET", "/accounts")
    except CliError as error:
        raise fail(error) from None
    if as_json:
        _print_json(found)
    else:
        show(console, accounts_table(found))

"""The `gennaker` command; stack/cli.py adds `api` and `dev` and is the entry point.

Exit codes: 0 success, 1 pipeline failed, 2 bad input, 3 service unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from workers.cli_common import DEFAULT_API, ApiUrl, User, console, errors, gateway
from workers.cli_follow import exit_code_for, follow_execution, print_execution
from workers.cli_help import typeless_help
from workers.cli_import import import_app
from workers.cli_metrics import metrics_app
from workers.cli_pipelines import list_accounts, list_applications, pipelines_app
from workers.cli_servergroups import servergroup_app
from workers.cli_tokens import token_app
from workers.gateway_client import EXIT_BAD_INPUT, CliError, GatewayClient
from workers.render import FINAL_STATUSES, clusters_table, executions_table, show

app = typer.Typer(
    help="Gennaker: Spinnaker-style delivery pipelines as durable Temporal workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    from workflows.model import load_pipeline_text

    try:
        # JSON as JSON: tabs are valid JSON, but YAML (a superset otherwise) refuses them.
        data = json.loads(text) if path.suffix.lower() == ".json" else load_pipeline_text(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must contain a pipeline object")
    return data


def _parse_params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"parameter {item!r} must look like name=value")
        params[key] = value
    return params


@app.command()
def run(
    file: Annotated[Path | None, typer.Argument(help="Pipeline file (YAML or JSON)")] = None,
    application: Annotated[str | None, typer.Option("--app", help="Saved pipeline's application")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Saved pipeline's name")] = None,
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="name=value, repeatable")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress until it ends")] = False,
    idempotency_key: Annotated[str | None, typer.Option(help="Retries with the same key start nothing new")] = None,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Run a pipeline from FILE, or a saved one with --app and --pipeline."""
    if (file is None) == (application is None or pipeline is None):
        raise CliError("give a pipeline FILE, or --app and --pipeline of a saved pipeline (not both)")
    params = _parse_params(param or [])
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    client = gateway(api, user)
    if file is not None:
        body = {"pipeline": _load_file(file), "parameters": params}
        started = client.request("POST", "/executions", json=body, headers=headers)
    else:
        started = client.request(
            "POST", f"/pipelines/{application}/{pipeline}", json={"parameters": params}, headers=headers
        )
    console.print(f"started [bold]{started['id']}[/bold]")
    console.print(f"  Temporal UI: {started['links']['ui']}", highlight=False)
    if follow:
        raise typer.Exit(_follow(client, started["id"]))


def _follow(client: GatewayClient, execution_id: str) -> int:
    return follow_execution(client, execution_id, console, errors)


def _exit_for(state: dict[str, Any]) -> int:
    return exit_code_for(state, errors)


@app.command()
def status(
    execution_id: str,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show live progress until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full state as JSON")] = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Show an execution's stages. Exit 1 if it failed or was canceled."""
    client = gateway(api, user)
    if follow and not as_json:
        raise typer.Exit(_follow(client, execution_id))
    state = client.request("GET", f"/executions/{execution_id}")
    if as_json:
        sys.stdout.write(json.dumps(state, indent=2) + "\n")
    else:
        print_execution(client, state, console)
    if state["status"] in FINAL_STATUSES:
        raise typer.Exit(_exit_for(state))


@app.command()
def approve(
    execution_id: str,
    stage: Annotated[str, typer.Argument(help="refId of the manual judgment stage")],
    option: Annotated[str | None, typer.Option("--option", help="One of the stage's judgmentInputs")] = None,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Judge 'stop' instead of 'continue'")] = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Judge a waiting manual judgment (continue, or --stop)."""
    body = {"judgmentStatus": "stop" if stop else "continue", "input": option, "comment": comment}
    record = gateway(api, user).request("POST", f"/executions/{execution_id}/stages/{stage}/judgment", json=body)
    chosen = f" ({record['input']})" if record.get("input") else ""
    console.print(f"judged [bold]{record['judgmentStatus']}[/bold]{chosen} by {record.get('user') or 'unknown'}")


def _control(action: str, execution_id: str, api: str, user: str | None, reason: str | None) -> dict[str, Any]:
    result: dict[str, Any] = gateway(api, user).request(
        "PUT", f"/executions/{execution_id}/{action}", json={"reason": reason}
    )
    return result


Reason = Annotated[str | None, typer.Option("--reason", help="Recorded in the execution")]


@app.command()
def cancel(execution_id: str, reason: Reason = None, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Cancel a running execution; cleanup in its stages still runs."""
    _control("cancel", execution_id, api, user, reason)
    console.print(f"cancel requested for {execution_id}")


@app.command()
def pause(execution_id: str, reason: Reason = None, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Pause: no new stage starts and waits stop counting until resumed."""
    _control("pause", execution_id, api, user, reason)
    console.print(f"paused {execution_id}")


@app.command()
def resume(execution_id: str, reason: Reason = None, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Resume a paused execution."""
    _control("resume", execution_id, api, user, reason)
    console.print(f"resumed {execution_id}")


@app.command("skip-wait")
def skip_wait(execution_id: str, stage: str, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """End a running wait stage now."""
    gateway(api, user).request("POST", f"/executions/{execution_id}/stages/{stage}/skip")
    console.print(f"skipped wait {stage}")


@app.command()
def restart(execution_id: str, stage: str, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Restart a finished execution from STAGE (a new run under the same execution id)."""
    started = gateway(api, user).request("POST", f"/executions/{execution_id}/stages/{stage}/restart")
    console.print(f"restarted {started['id']} from {stage} (run {started['runId']})")


@app.command("list")
def list_executions(
    application: Annotated[str | None, typer.Option("--app")] = None,
    pipeline: Annotated[str | None, typer.Option("--pipeline")] = None,
    status_filter: Annotated[str | None, typer.Option("--status", help="RUNNING, SUCCEEDED, TERMINAL, …")] = None,
    limit: int = 20,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """List executions, newest first."""
    query = {k: v for k, v in {"application": application, "pipeline": pipeline, "status": status_filter}.items() if v}
    found = gateway(api, user).request("GET", "/executions", params={**query, "limit": limit})
    show(console, executions_table(found["executions"]))


@app.command()
def clusters(
    application: Annotated[str, typer.Argument(help="Application")],
    account: Annotated[list[str] | None, typer.Option("--account", help="Only these accounts")] = None,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Server groups of an application's clusters: version, readiness, traffic, image."""
    params = {"account": account} if account else {}
    found = gateway(api, user).request("GET", f"/applications/{application}/clusters", params=params)
    show(console, clusters_table(found))
    for problem in found.get("errors", []):
        errors.print(f"[yellow]account {escape(problem['account'])}:[/yellow] {escape(problem['message'])}")


@app.command()
def save(file: Path, api: ApiUrl = DEFAULT_API, user: User = None) -> None:
    """Save a pipeline file as a new revision of application/name."""
    data = _load_file(file)
    app_name, name = data.get("application"), data.get("name")
    if not isinstance(app_name, str) or not isinstance(name, str):
        raise CliError(f"{file} needs `application` and `name`")
    saved = gateway(api, user).request("PUT", f"/applications/{app_name}/pipelines/{name}", json=data)
    console.print(f"saved {saved['application']}/{saved['name']} revision {saved['revision']}")


@app.command()
def validate(file: Path) -> None:
    """Check a pipeline file locally, without a gateway. Exit 2 with every problem if invalid."""
    from workflows.model import PipelineInvalid, parse_pipeline
    from workflows.spel_lint import reject_spel

    data = _load_file(file)
    try:
        reject_spel(data)
        spec = parse_pipeline(data)
    except PipelineInvalid as exc:
        for item in exc.errors:
            errors.print(f"[red]{escape(item.field)}[/red]: {escape(item.message)}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    console.print(f"{spec.application}/{spec.name}: {len(spec.stages)} stage(s), valid")


@app.command()
def schema() -> None:
    """Print the pipeline JSON Schema (every stage type)."""
    from workflows.model import pipeline_json_schema

    sys.stdout.write(json.dumps(pipeline_json_schema(), indent=2) + "\n")


@app.command()
def worker(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="gennaker.yaml")] = None,
    task_queue: Annotated[str | None, typer.Option(help="Override the configured task queue")] = None,
    temporal_address: Annotated[str | None, typer.Option(help="Override the Temporal address")] = None,
) -> None:
    """Run a worker for the task queues in gennaker.yaml until SIGTERM (graceful)."""
    from core.observability.logs import configure_logging
    from core.observability.settings import TelemetryConfigError
    from workers.config import ConfigError, load_worker_config
    from workers.main import run_worker

    try:
        configure_logging()
        settings = load_worker_config(config, task_queue=task_queue, temporal_address=temporal_address)
    except (ConfigError, TelemetryConfigError) as exc:
        raise CliError(str(exc)) from None
    asyncio.run(run_worker(settings))


app.add_typer(token_app, name="token")
app.add_typer(import_app, name="import")
app.add_typer(metrics_app, name="metrics")
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(servergroup_app, name="servergroup")
app.command("applications")(list_applications)
app.command("accounts")(list_accounts)


def run_cli() -> None:
    """Run the command and leave with its exit code (see stack/cli.py, the entry point)."""
    # temporalio's core can abort with "PyGILState_Release" at interpreter exit after all work is
    # done (seen with 1.35); leave with the command's own exit code before that teardown runs.
    code = 0
    try:
        typeless_help(app)()  # standalone: click prints usage errors and exits 2
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except CliError as error:  # the one place command errors become a message and an exit code
        error.show()
        code = error.exit_code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""`gennaker api`, `gennaker dev` and `gennaker db upgrade`, added to the worker-side commands of workers/cli.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from workers.cli import app, run_cli
from workers.gateway_client import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, CliError


@app.command("api")
def serve_api(
    host: Annotated[str | None, typer.Option(help="Default GENNAKER_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default GENNAKER_API_PORT")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="gennaker.yaml (env wins over it)")] = None,
) -> None:
    """Run the gateway (settings from GENNAKER_* environment variables and the YAML file)."""
    import uvicorn

    from api.app import create_app
    from api.settings import GatewaySettings
    from core.observability.logs import configure_logging
    from core.observability.settings import TelemetryConfigError
    from core.settings import ConfigError

    try:
        configure_logging()  # log_config=None below: uvicorn's loggers go through this format too
        settings = GatewaySettings.load(config)
        gateway = create_app(settings)
    except (ConfigError, TelemetryConfigError) as exc:
        raise CliError(str(exc)) from None
    uvicorn.run(gateway, host=host or settings.api_host, port=port or settings.api_port, log_config=None)


db_app = typer.Typer(help="The gateway's store (saved pipelines, API tokens).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="gennaker.yaml (env wins over it)")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: database_url of the settings")
    ] = None,
) -> None:
    """Migrate the store's schema to this version's newest revision (the gateway also does it at
    start; replicas and this command take turns on a database lock). Adopts databases made by
    versions before migrations, keeping their rows."""
    from sqlalchemy.exc import OperationalError

    from core.settings import ConfigError, GennakerSettings
    from core.store.database import make_engine
    from core.store.migrate import head_revision, upgrade

    try:
        url = database_url or GennakerSettings.load(config).database_url
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    engine = make_engine(url)
    try:
        reached = upgrade(engine)
    except Exception as exc:  # unreachable server, bad URL, refused credentials: a message, not a trace
        where = engine.url.render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip()
        unreachable = isinstance(exc, OperationalError)
        exit_code = EXIT_UNAVAILABLE if unreachable else EXIT_BAD_INPUT
        raise CliError(f"cannot migrate {where}: {reason}", exit_code) from None
    finally:
        engine.dispose()
    note = "" if reached == head_revision() else f" (newer than this Gennaker's {head_revision()}; left alone)"
    typer.echo(f"store at revision {reached}{note}")


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the dev stack keeps its state")] = Path(".data"),
    port_offset: Annotated[int, typer.Option(min=0, max=1000, help="Add N to every port")] = 0,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="A real cluster as account `local`; default: kubesim as `local-sim`")
    ] = None,
    kube_context: Annotated[str | None, typer.Option(help="Context in --kubeconfig")] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="gennaker.yaml: accounts, registries, Jenkins, notifications, trigger secrets (docs/dev-stack.md)",
        ),
    ] = None,
) -> None:
    """Start the embedded stack: Temporal dev server + UI, a worker and the gateway. Ctrl-C stops it."""
    from stack.dev import run_dev_stack

    asyncio.run(run_dev_stack(data_dir, port_offset, kubeconfig, kube_context, config=config))


def main() -> None:
    run_cli()

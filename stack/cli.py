"""`gennaker api` and `gennaker dev`, added to the worker-side commands of workers/cli.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from workers.cli import app, run_cli
from workers.gateway_client import CliError


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
    from core.settings import ConfigError

    try:
        settings = GatewaySettings.load(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port)


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

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


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="Where the dev stack keeps its state")] = Path(".data"),
    port_offset: Annotated[int, typer.Option(min=0, max=1000, help="Add N to every port")] = 0,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="A real cluster as account `local`; default: kubesim as `local-sim`")
    ] = None,
    kube_context: Annotated[str | None, typer.Option(help="Context in --kubeconfig")] = None,
) -> None:
    """Start the embedded stack: Temporal dev server + UI, a worker and the gateway. Ctrl-C stops it."""
    from stack.dev import run_dev_stack

    asyncio.run(run_dev_stack(data_dir, port_offset, kubeconfig, kube_context))


def main() -> None:
    run_cli()

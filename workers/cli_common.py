"""Options and helpers the gateway-talking CLI modules share (`--api`, `--user`, errors, consoles).

Every option names its metavar: typer would otherwise print Python types (`<list[str]>`) in help.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from workers.gateway_client import CliError, GatewayClient

console = Console()
errors = Console(stderr=True)

DEFAULT_API = "http://127.0.0.1:8084"
ApiUrl = Annotated[str, typer.Option("--api", envvar="GENNAKER_API_URL", metavar="URL", help="Gateway URL")]
User = Annotated[
    str | None,
    typer.Option(
        "--user", envvar="GENNAKER_USER", metavar="NAME", help="Who you are, when the gateway runs without auth"
    ),
]
AsJson = Annotated[bool, typer.Option("--json", metavar="", help="Print the gateway's JSON instead of a table")]


def gateway(api: str, user: str | None) -> GatewayClient:
    # The token comes from the environment only, so it never shows in shell history or `ps`.
    return GatewayClient(api, user or os.environ.get("USER"), token=os.environ.get("GENNAKER_TOKEN"))


def fail(error: CliError) -> typer.Exit:
    errors.print(f"[red]error:[/red] {escape(error.message)}", highlight=False)
    return typer.Exit(error.exit_code)

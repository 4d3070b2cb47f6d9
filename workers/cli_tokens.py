"""`gennaker token create|list|revoke`: API tokens, managed where the gateway's database is."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from workers.cli_common import console, errors
from workers.gateway_client import EXIT_BAD_INPUT, CliError

token_app = typer.Typer(help="API tokens (run where the gateway's database is reachable).", no_args_is_help=True)
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", envvar="GENNAKER_DATABASE_URL", help="The gateway's store")
]


def _tokens(database_url: str | None) -> Any:
    from core.settings import GennakerSettings
    from core.store.tokens import TokenStore

    return TokenStore(database_url or GennakerSettings.load().database_url)


@token_app.command("create")
def token_create(
    subject: Annotated[str, typer.Option("--subject", help="Who the token acts as (policy principal)")],
    group: Annotated[list[str] | None, typer.Option("--group", help="Groups, repeatable (policy group:<name>)")] = None,
    name: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a token and print it once; only its SHA-256 is stored."""
    token, info = _tokens(database_url).create(subject, group or [], name, created_by=os.environ.get("USER"))
    errors.print(f"token {info.id} for {info.subject} (groups: {', '.join(info.groups) or '-'}); shown only now:")
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(database_url: DatabaseUrl = None) -> None:
    """List tokens (never their values)."""
    from rich.table import Table

    table = Table()
    for column in ("id", "name", "subject", "groups", "created", "revoked"):
        table.add_column(column)
    for info in _tokens(database_url).list():
        table.add_row(
            str(info.id), info.name, info.subject, ", ".join(info.groups), str(info.created_at)[:19], str(info.revoked)
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int, database_url: DatabaseUrl = None) -> None:
    """Revoke a token by id; it stops working at once."""
    if not _tokens(database_url).revoke(token_id):
        raise CliError(f"no live token with id {token_id}", EXIT_BAD_INPUT)
    console.print(f"revoked token {token_id}")

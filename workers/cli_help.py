"""Help text without Python types.

typer (0.2x) prints each parameter's Python annotation in help (`<list[str]>`, `<bool>`, `<path>`)
unless the parameter has a metavar. `typeless_help(app)` builds the click command tree once and
gives every parameter that lacks one a metavar named after it (flags none), so help reads like
`--account ACCOUNT` whatever the annotation is. Commands that set their own metavars keep them.
"""

from __future__ import annotations

from typing import Any

import typer
import typer.main
from typer.core import TyperArgument, TyperOption

# typer 0.2x vendors its own click (`typer._click`), so only typer's public classes are used here.


class _UntypedArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        # The metavar already names the argument (APP, FILE); typer would add `<str>` beside it.
        return None


def _metavar_for(param: TyperArgument | TyperOption) -> str:
    longest = max((*param.opts, *param.secondary_opts), key=len, default=param.name or "value")
    return longest.lstrip("-").replace("-", "_").upper()


def _tidy(command: Any, parent: typer.Context | None) -> None:
    ctx = typer.Context(command, info_name=command.name, parent=parent)
    for param in command.get_params(ctx):  # includes the (cached) --help option
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = _metavar_for(param)
            param.__class__ = _UntypedArgument
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _metavar_for(param)
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub, ctx)


def typeless_help(app: typer.Typer) -> Any:
    """The app's click command with type-free help; call it instead of `app()`."""
    command = typer.main.get_command(app)
    _tidy(command, None)
    return command

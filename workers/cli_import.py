"""`gennaker import spinnaker FILE|DIR|-`: translate Spinnaker pipeline JSON into Gennaker pipelines.

The report (mapped / dropped / untranslated, each with its JSON path) goes to stderr; the pipelines
go to `--out DIR` (YAML, one file per pipeline), to the gateway (`--save`), or as YAML to stdout.
Exit 2 on bad input, or with `--strict` when anything could not be translated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from workers.cli_common import DEFAULT_API, ApiUrl, User, gateway
from workers.gateway_client import EXIT_BAD_INPUT, CliError

if TYPE_CHECKING:
    from core.spinnaker import ImportOptions, ImportResult

import_app = typer.Typer(help="Bring pipelines over from other delivery tools.", no_args_is_help=True)
errors = Console(stderr=True, soft_wrap=True)


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors/aliases: each pipeline file reads on its own, as a person wrote it."""

    def ignore_aliases(self, data: object) -> bool:
        return True


_STYLE = {"mapped": "green", "dropped": "dim", "untranslated": "red"}


def _read(source: str, options: ImportOptions) -> ImportResult:
    from core.spinnaker import import_path, import_pipelines
    from core.spinnaker.sources import MAX_BYTES, parse_json, pipelines_in

    if source == "-":
        text = sys.stdin.buffer.read(MAX_BYTES + 1)
        return import_pipelines(pipelines_in(parse_json(text, "-"), "-"), options)
    return import_path(Path(source), options)


def print_report(result: ImportResult, verbose: bool) -> None:
    for imported in result.pipelines:
        state = "valid" if imported.valid else ("needs a person" if imported.pipeline else "not imported")
        errors.print(f"[bold]{escape(imported.name)}[/bold] ({escape(imported.source)}): {state}", highlight=False)
        counts = {o: sum(1 for i in imported.items if i.outcome == o) for o in _STYLE}
        for item in imported.items:
            if verbose or item.outcome == "untranslated":
                style = _STYLE[item.outcome]
                errors.print(
                    f"  [{style}]{item.outcome:12}[/{style}] {escape(item.path)}: {escape(item.message)}",
                    highlight=False,
                )
        for problem in imported.problems:
            errors.print(f"  [red]invalid     [/red] {escape(problem)}", highlight=False)
        if not verbose:
            errors.print(
                f"  {counts['mapped']} mapped, {counts['dropped']} dropped (changes nothing); --verbose lists them"
            )
    errors.print(json.dumps(result.summary()), highlight=False)


def _write(result: ImportResult, out: Path) -> None:
    for imported in result.pipelines:
        if imported.pipeline is None:
            continue
        folder = out / str(imported.pipeline.get("application") or "unknown")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{imported.pipeline['name']}.yaml"
        target.write_text(yaml.dump(imported.pipeline, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True))
        errors.print(f"wrote {target}", highlight=False)


def _save(result: ImportResult, api: str, user: str | None) -> None:
    client = gateway(api, user)
    try:
        for imported in result.pipelines:
            if not imported.valid or imported.pipeline is None:
                errors.print(f"not saved: {escape(imported.name)} (not valid)", highlight=False)
                continue
            data = imported.pipeline
            saved = client.request("PUT", f"/applications/{data['application']}/pipelines/{data['name']}", json=data)
            errors.print(f"saved {saved['application']}/{saved['name']} revision {saved['revision']}", highlight=False)
    finally:
        client.close()


@import_app.command("spinnaker")
def import_spinnaker(
    source: Annotated[str, typer.Argument(help="Pipeline JSON file, export directory, or - for stdin")],
    application: Annotated[str | None, typer.Option("--application", help="Application for every pipeline")] = None,
    account_map: Annotated[list[str] | None, typer.Option("--account-map", help="old=new, repeatable")] = None,
    namespace_map: Annotated[list[str] | None, typer.Option("--namespace-map", help="old=new, repeatable")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write YAML files (one per pipeline) here")] = None,
    save: Annotated[bool, typer.Option("--save", help="Save the valid pipelines through the gateway")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 2 if anything is untranslated")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List mapped and dropped fields too")] = False,
    api: ApiUrl = DEFAULT_API,
    user: User = None,
) -> None:
    """Translate Spinnaker pipelines (one, a `spin pipeline list` array, or an export directory)."""
    # The translator (a SpEL parser, the stage catalogue) takes half a second to import: only the
    # command that uses it pays for it, not every `gennaker` invocation.
    from core.spinnaker import ImportOptions, SourceError, parse_mapping

    try:
        options = ImportOptions(
            application=application,
            account_map=parse_mapping(account_map or [], "--account-map"),
            namespace_map=parse_mapping(namespace_map or [], "--namespace-map"),
            strict=strict,
        )
        result = _read(source, options)
    except SourceError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    print_report(result, verbose)
    if strict and result.has_untranslated():
        errors.print("[red]--strict:[/red] some of it could not be translated; nothing written or saved")
        raise typer.Exit(EXIT_BAD_INPUT)
    if out is not None:
        _write(result, out)
    if save:
        try:
            _save(result, api, user)
        except CliError as error:
            errors.print(f"[red]error:[/red] {escape(error.message)}", highlight=False)
            raise typer.Exit(error.exit_code) from None
    if out is None and not save:
        documents = [p.pipeline for p in result.pipelines if p.pipeline is not None]
        sys.stdout.write(yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True))

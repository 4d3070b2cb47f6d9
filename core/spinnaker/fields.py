"""What every mapper uses: the import options, the report, the expression translator, and a reader
of one Spinnaker object that notices every field nobody took (so nothing vanishes unreported)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.spinnaker.cron import SPINNAKER_DEFAULT_TIMEZONE
from core.spinnaker.report import Recorder
from core.spinnaker.templates import Templates
from core.spinnaker.translate import Scope, Translator


@dataclass(frozen=True)
class ImportOptions:
    application: str | None = None
    account_map: Mapping[str, str] = field(default_factory=dict)
    namespace_map: Mapping[str, str] = field(default_factory=dict)
    strict: bool = False
    cron_timezone: str = SPINNAKER_DEFAULT_TIMEZONE


class Context:
    """One pipeline being imported."""

    def __init__(self, options: ImportOptions, scope: Scope, application: str) -> None:
        self.options = options
        self.scope = scope
        self.application = application
        self.report = Recorder()
        self.templates = Templates(Translator(scope), self.report)

    def account(self, name: Any, where: str) -> Any:
        if isinstance(name, str) and name in self.options.account_map:
            mapped = self.options.account_map[name]
            self.report.mapped(where, f"account {name!r} → {mapped!r} (--account-map)")
            return mapped
        return name

    def namespace(self, name: Any, where: str) -> Any:
        if isinstance(name, str) and name in self.options.namespace_map:
            mapped = self.options.namespace_map[name]
            self.report.mapped(where, f"namespace {name!r} → {mapped!r} (--namespace-map)")
            return mapped
        return name


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {} or value is False


class Fields:
    """Read a Spinnaker object key by key; `leftovers` reports whatever was not taken."""

    def __init__(self, data: Mapping[str, Any], where: str, ctx: Context) -> None:
        self.data = dict(data)
        self.where = where
        self.ctx = ctx
        self.taken: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data and not is_empty(self.data[key])

    def take(self, key: str, default: Any = None) -> Any:
        self.taken.add(key)
        return self.data.get(key, default)

    def drop(self, key: str, why: str, *, only_if: Any = ...) -> None:
        """Drop `key` with the reason it changes nothing; if `only_if` is given, only for that value
        (otherwise the key is left for `leftovers` to report)."""
        if key not in self.data:
            return
        value = self.data[key]
        if only_if is not ... and value != only_if and not (only_if is None and is_empty(value)):
            return
        self.taken.add(key)
        self.ctx.report.dropped(self.path(key), why)

    def text(self, key: str) -> Any:
        value = self.take(key)
        return self.ctx.templates.text(value, self.path(key)) if isinstance(value, str) else value

    def value(self, key: str) -> Any:
        return self.ctx.templates.value(self.take(key), self.path(key))

    def leftovers(self, what: str) -> None:
        for key, value in self.data.items():
            if key in self.taken:
                continue
            if is_empty(value):
                self.ctx.report.dropped(self.path(key), "empty or off")
            else:
                self.ctx.report.untranslated(self.path(key), f"{what} field {key!r} has no Gennaker counterpart")


def slug(text: str, limit: int = 63) -> str:
    """`Deploy to Prod` → `deploy-to-prod` (Gennaker names: lowercase, digits, dashes)."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return out or "pipeline"


def identifier(text: str) -> str:
    """A parameter or variable name CEL can read as `parameters.x`."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return out if re.match(r"^[A-Za-z_]", out) else f"_{out}"


def number(value: Any) -> Any:
    """Deck writes numbers typed into text boxes as strings ("3"); expressions stay as they are."""
    if isinstance(value, str):
        stripped = value.strip()
        if re.fullmatch(r"-?\d+", stripped):
            return int(stripped)
        if re.fullmatch(r"-?\d+\.\d*", stripped):
            return float(stripped)
    return value


def boolean(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value

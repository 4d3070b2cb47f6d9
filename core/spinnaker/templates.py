"""Strings with SpEL `${ … }` become strings with CEL `${{ … }}`; what cannot be translated stays
as written (Gennaker validation then rejects it, so it is never taken for literal text) and is
reported with its path."""

from __future__ import annotations

from typing import Any

from core.spinnaker import spel
from core.spinnaker.cel_values import Untranslatable
from core.spinnaker.report import Recorder
from core.spinnaker.translate import Translator

# A second, empty expression makes Gennaker interpolate rather than keep the value's type, so a map
# or list prints as JSON text, as SpEL's #toJson gives (workflows/expressions.py `_as_text`).
_AS_TEXT = '${{ "" }}'


class Templates:
    def __init__(self, translator: Translator, report: Recorder) -> None:
        self.translator = translator
        self.report = report
        self.translated = 0

    def text(self, value: str, where: str) -> str:
        if not spel.has_template(value):
            return value
        try:
            parts = spel.split_template(value)
        except spel.SpelSyntaxError as exc:
            self.report.untranslated(where, f"SpEL template cannot be read ({exc}): {value!r}", expression=True)
            return value
        out: list[str] = []
        for part in parts:
            if not part.expression:
                out.append(part.text)
                continue
            try:
                cel = self.translator.expression(part.text)
            except Untranslatable as exc:
                self.report.untranslated(where, f"${{{part.text}}}: {exc}", expression=True)
                out.append("${" + part.text + "}")
                continue
            self.translated += 1
            self.report.mapped(where, f"SpEL ${{{part.text.strip()}}} → ${{{{ {cel.text} }}}}")
            out.append("${{ " + cel.text + " }}")
            if cel.to_json and len(parts) == 1:
                out.append(_AS_TEXT)
        return "".join(out)

    def condition(self, value: str, where: str) -> str:
        """A condition (stageEnabled, precondition): SpEL written bare or wrapped in `${ }`."""
        stripped = value.strip()
        if spel.has_template(stripped):
            return self.text(stripped, where)
        try:
            cel = self.translator.expression(stripped)
        except Untranslatable as exc:
            self.report.untranslated(where, f"{stripped}: {exc}", expression=True)
            return "${" + stripped + "}"
        self.translated += 1
        self.report.mapped(where, f"SpEL {stripped} → CEL {cel.text}")
        return cel.text

    def value(self, value: Any, where: str) -> Any:
        """Translate every string inside lists and maps (manifests, payloads, parameters)."""
        if isinstance(value, str):
            return self.text(value, where)
        if isinstance(value, dict):
            return {k: self.value(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

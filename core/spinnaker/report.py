"""What an import tells people: for every pipeline, what was mapped, what was dropped (and that
dropping it changes nothing), and what could not be translated, each with its JSON path."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["mapped", "dropped", "untranslated"]


class ReportItem(BaseModel):
    path: str = Field(description="JSON path in the Spinnaker pipeline, e.g. stages[2].clusters[0].strategy")
    outcome: Outcome
    message: str
    expression: bool = Field(default=False, description="An untranslated SpEL expression (counted apart)")


class ImportedPipeline(BaseModel):
    source: str = Field(description="Where the pipeline came from: file, file[index] or -[index]")
    originalName: str | None = None
    pipeline: dict[str, Any] | None = Field(default=None, description="The Gennaker pipeline, or None")
    complete: bool = Field(default=False, description="Every stage type has a Gennaker counterpart")
    valid: bool = Field(default=False, description="Passes Gennaker validation as written")
    problems: list[str] = Field(default_factory=list, description="Validation problems of the result")
    items: list[ReportItem] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return str((self.pipeline or {}).get("name") or self.originalName or self.source)

    def untranslated(self) -> list[ReportItem]:
        return [i for i in self.items if i.outcome == "untranslated"]


class ImportResult(BaseModel):
    pipelines: list[ImportedPipeline] = Field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "pipelines": len(self.pipelines),
            "imported": sum(1 for p in self.pipelines if p.complete),
            "validated": sum(1 for p in self.pipelines if p.valid),
            "untranslated_expressions": sum(
                1 for p in self.pipelines for i in p.items if i.outcome == "untranslated" and i.expression
            ),
        }

    def has_untranslated(self) -> bool:
        return any(p.untranslated() or not p.valid for p in self.pipelines)


class Recorder:
    """Collects report items for one pipeline."""

    def __init__(self) -> None:
        self.items: list[ReportItem] = []

    def mapped(self, path: str, message: str) -> None:
        self.items.append(ReportItem(path=path, outcome="mapped", message=message))

    def dropped(self, path: str, why: str) -> None:
        self.items.append(ReportItem(path=path, outcome="dropped", message=f"dropped; changes nothing: {why}"))

    def untranslated(self, path: str, message: str, *, expression: bool = False) -> None:
        self.items.append(ReportItem(path=path, outcome="untranslated", message=message, expression=expression))

"""What one security test tried and what it was answered: its row in the report's "Hostile input"
section (tests/security/conftest.py turns it into the row)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HostileInput:
    """What one security test tried and what it was answered, for its report row."""

    how: str = ""
    answers: list[str] = field(default_factory=list)

    def tried(self, how: str) -> None:
        self.how = how

    def answer(self, text: str) -> None:
        self.answers.append(text)

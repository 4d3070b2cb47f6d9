"""The dependency rules of DESIGN.md, checked on the source: workers, activities, workflows and the
shared core never import the gateway; the core never imports the workers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "workers": {"api", "stack"},
    "activities": {"api", "workers", "core", "stack"},
    "workflows": {"api", "workers", "core", "stack"},
    "core": {"api", "workers", "stack"},
}
# activities/triggers.py is the one activity that runs core code (trigger dispatch), by design.
ALLOWED = {("activities/triggers.py", "core")}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_respect_the_layers(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {top}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for top, line in sorted(imported_packages(path))
        if top in FORBIDDEN[package] and (str(path.relative_to(ROOT)), top) not in ALLOWED
    ]
    assert not offending, "\n".join(offending)


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from api.settings import GatewaySettings\n    import api.app\n")
    assert imported_packages(sample) == {("api", 2), ("api", 3)}

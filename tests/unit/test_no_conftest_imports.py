"""Shared test helpers live in tests/support/; a conftest.py holds fixtures and hooks only. Importing a
conftest as a module loads it a second time under another name (pytest already imported it as a
plugin), so its module state is doubled and its fixtures are registered twice."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def conftest_imports(source: str) -> list[str]:
    """The modules named conftest that `source` imports (`from x.conftest import y`, `import conftest`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [f"{node.module or ''}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if name.split(".")[-1] == "conftest"][:1]
    return found


def test_no_module_of_the_suite_imports_a_conftest() -> None:
    offenders = {
        str(path.relative_to(TESTS)): conftest_imports(path.read_text())
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "conftest.py"
    }
    offenders = {path: found for path, found in offenders.items() if found}
    assert not offenders, f"import helpers from tests/support/, not from a conftest: {offenders}"


def test_the_check_sees_every_spelling() -> None:
    assert conftest_imports("from tests.conftest import Runner") == ["tests.conftest"]
    assert conftest_imports("from conftest import pipeline") == ["conftest"]
    assert conftest_imports("from tests.e2e import conftest") == ["tests.e2e.conftest"]
    assert conftest_imports("import tests.reliability.conftest as rig") == ["tests.reliability.conftest"]
    assert conftest_imports("from tests.support.runner import Runner") == []

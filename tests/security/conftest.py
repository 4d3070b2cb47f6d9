"""The security tests' share of the reliability report: one "Hostile input" row per attack tried.

Every test here is an attack (or the own-resource case beside it): after it runs, its row says which
attack (module and test, with the case id of a parametrized one), how it was tried and what Gennaker
answered. A test states the answer it checked with the `hostile_input` fixture
(`hostile_input.answer("403: policy: … may not EXECUTE")`); a table-driven test whose cases carry an
`expected` parameter is described by it; otherwise the row says the test's assertions held. A strict
xfail test is a known gap, and its row says KNOWN BUG with the reason. The report
itself is tests/reliability/report.py: it writes docs/reliability.md when both folders ran whole.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests.reliability.report import (  # noqa: F401  (hooks pytest finds in this conftest)
    HOSTILE,
    pytest_collection_finish,
    pytest_deselected,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    report_of,
)
from tests.support.hostile_input import HostileInput

_ATTACK = pytest.StashKey[HostileInput]()


@pytest.fixture
def hostile_input(request: pytest.FixtureRequest) -> HostileInput:
    attack = HostileInput()
    request.node.stash[_ATTACK] = attack
    return attack


def _described(expected: Any) -> str:
    if expected == "ok":
        return "allowed"
    if isinstance(expected, tuple):
        return ": ".join(str(part) for part in expected)
    return str(expected)


def _row(item: pytest.Item, passed: bool, known_gap: str | None) -> None:
    function = getattr(item, "function", None)
    topic = item.path.stem.removeprefix("test_").replace("_", " ")
    name = getattr(function, "__name__", item.name).removeprefix("test_").replace("_", " ")
    callspec = getattr(item, "callspec", None)
    case = f" — {callspec.id}" if callspec is not None else ""
    attack = item.stash.get(_ATTACK, HostileInput())
    doc = (getattr(function, "__doc__", None) or "").strip().splitlines()
    how = attack.how or (doc[0] if doc else "")
    if attack.answers:
        answer = "; ".join(attack.answers)
    elif callspec is not None and "expected" in callspec.params:
        answer = _described(callspec.params["expected"])
    else:
        answer = "" if known_gap else "as the test asserts"
    report_of(item.config).add(HOSTILE, f"{topic}: {name}{case}", how, 1, int(passed), answer, known_gap)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    if report.when == "call":
        # A strict xfail is a known gap: its row says so instead of claiming the attack was refused.
        _row(item, report.passed, getattr(report, "wasxfail", None) or None)
    return report

"""Fixtures and report hooks of the reliability tests (issue #7); their helpers live in
tests/support/reliability_runs.py (runs under fault) and tests/support/fault_proxies.py (failing
services). Random choices come from `reliability.rng(name)`, derived from one seed per session
(printed, and written into docs/reliability.md).
"""

from __future__ import annotations

import pytest

from tests.reliability.report import (  # noqa: F401  (hooks pytest finds in this conftest)
    ReliabilityReport,
    pytest_collection_finish,
    pytest_deselected,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
    report_of,
)
from tests.support.docker_rig import SCRATCH_DOCKERFILE, docker_rig_fixture  # noqa: F401  (session `docker_rig`)
from tests.support.worker_process import ACTIVITY_QUEUE, WORKFLOW_QUEUE, WorkerSubprocess  # noqa: F401


@pytest.fixture(scope="session")
def reliability(request: pytest.FixtureRequest) -> ReliabilityReport:
    return report_of(request.config)

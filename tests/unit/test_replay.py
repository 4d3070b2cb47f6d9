"""Determinism guard: recorded histories of real runs must replay against today's workflow code.

Histories were recorded from the dev stack with `temporal workflow show --output json` (see
tests/fixtures/histories/README.md). A change that alters the commands a running execution would
issue fails here; guard it with `workflow.patched(...)` instead of breaking live runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.temporal import data_converter
from workers.runner import workflow_runner
from workflows.gate import PipelineGate
from workflows.pipeline import PipelineWorkflow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "histories"
HISTORIES = sorted(FIXTURES.glob("*.json"))
# The newer histories were recorded encrypted; this throwaway key (for these fixtures only) reads them,
# and the older, unencrypted ones pass through the codec untouched.
FIXTURE_KEYS = FIXTURES / "codec-keys.yaml"


def test_there_are_histories_to_replay() -> None:
    assert len(HISTORIES) >= 9


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=[PipelineWorkflow, PipelineGate],
        data_converter=data_converter(FIXTURE_KEYS),
        workflow_runner=workflow_runner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"

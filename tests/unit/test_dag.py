"""DagScheduler: which stages start and what a failure does to the pipeline, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.dag import DagScheduler
from workflows.model import parse_pipeline
from workflows.state import ExecutionStatus, StageState, StageStatus


def wait(ref: str, *parents: str, **flags: Any) -> dict[str, Any]:
    return {"refId": ref, "type": "wait", "waitTime": 1, "requisiteStageRefIds": list(parents), **flags}


class Run:
    """A pipeline's stages and their states, driven by hand the way PipelineWorkflow drives them."""

    def __init__(self, *stages: dict[str, Any]) -> None:
        self.spec = parse_pipeline({"application": "shop", "name": "dag", "stages": list(stages)})
        self.states = {s.refId: StageState(refId=s.refId, name=s.display_name, type=s.type) for s in self.spec.stages}
        self.dag = DagScheduler(self.spec.stages, self.states)
        self.started: set[str] = set()

    def start_ready(self) -> list[str]:
        refs = [s.refId for s in self.dag.ready(self.started)]
        for ref in refs:
            self.started.add(ref)
            self.states[ref].status = StageStatus.RUNNING
        return refs

    def succeed(self, ref: str) -> None:
        self.states[ref].status = StageStatus.SUCCEEDED

    def fail(self, ref: str) -> bool:
        decision = self.dag.stage_failed(self.spec.stage(ref), f"{ref} broke")
        self.states[ref].status = decision.status
        return decision.cancel_others

    @property
    def running(self) -> bool:
        return any(s.status is StageStatus.RUNNING for s in self.states.values())


def test_siblings_start_together_and_a_join_waits_for_every_parent() -> None:
    run = Run(wait("a"), wait("b", "a"), wait("c", "a"), wait("join", "b", "c"))
    assert run.start_ready() == ["a"]
    run.succeed("a")
    assert run.start_ready() == ["b", "c"]
    run.succeed("b")
    assert run.start_ready() == [], "the join waits for c too"
    run.succeed("c")
    assert run.start_ready() == ["join"]
    run.succeed("join")
    assert run.dag.finished(run.running, run.started)
    assert run.dag.final_status() is ExecutionStatus.SUCCEEDED


@pytest.mark.parametrize("status", [StageStatus.SKIPPED, StageStatus.FAILED_CONTINUE])
def test_skipped_and_failed_continue_parents_let_children_run(status: StageStatus) -> None:
    run = Run(wait("a"), wait("b", "a"))
    run.start_ready()
    run.states["a"].status = status
    assert run.start_ready() == ["b"]


def test_fail_pipeline_halts_cancels_the_others_and_names_the_stage() -> None:
    run = Run(wait("a"), wait("b"), wait("after-a", "a"), wait("after-b", "b"))
    run.start_ready()
    assert run.fail("a") is True, "failPipeline cancels the other running stages"
    assert run.states["a"].status is StageStatus.TERMINAL
    run.succeed("b")
    assert run.start_ready() == [], "nothing starts after a failPipeline failure"
    assert run.dag.finished(run.running, run.started)
    assert run.dag.final_status() is ExecutionStatus.TERMINAL
    assert run.dag.failure == "stage 'a' (a, type wait) failed: a broke"


def test_continue_pipeline_marks_failed_continue_and_the_pipeline_succeeds() -> None:
    run = Run(wait("a", continuePipeline=True), wait("b", "a"))
    run.start_ready()
    assert run.fail("a") is False
    assert run.states["a"].status is StageStatus.FAILED_CONTINUE
    assert run.start_ready() == ["b"]
    run.succeed("b")
    assert run.dag.final_status() is ExecutionStatus.SUCCEEDED and run.dag.failure is None


def test_complete_other_branches_then_fail_lets_siblings_finish_then_fails() -> None:
    run = Run(wait("a", completeOtherBranchesThenFail=True), wait("after-a", "a"), wait("b"), wait("after-b", "b"))
    run.start_ready()
    assert run.fail("a") is False, "the other branches keep running"
    assert run.states["a"].status is StageStatus.TERMINAL
    run.succeed("b")
    assert run.start_ready() == ["after-b"], "the other branch goes on; a's branch stops"
    run.succeed("after-b")
    assert run.dag.finished(run.running, run.started)
    assert run.dag.final_status() is ExecutionStatus.TERMINAL
    assert run.dag.failure is not None and "'a'" in run.dag.failure


def test_no_flags_stops_only_the_branch() -> None:
    run = Run(wait("a", failPipeline=False), wait("after-a", "a"), wait("b"))
    run.start_ready()
    assert run.fail("a") is False
    assert run.states["a"].status is StageStatus.STOPPED
    run.succeed("b")
    assert run.start_ready() == []
    assert run.dag.finished(run.running, run.started)
    assert run.dag.final_status() is ExecutionStatus.SUCCEEDED


def test_the_first_failure_is_the_one_reported() -> None:
    run = Run(wait("a", completeOtherBranchesThenFail=True), wait("b"))
    run.start_ready()
    run.fail("a")
    run.fail("b")
    assert run.dag.failure is not None and run.dag.failure.startswith("stage 'a'")

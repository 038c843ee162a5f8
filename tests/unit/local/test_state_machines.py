"""Waiting for a local execution (changelake_local.state_machines.LocalStateMachines)."""

from __future__ import annotations

from typing import Any

import pytest

from changelake_local.deployed_stack import DeployedStack
from changelake_local.errors import LocalRunError, TemplateError
from changelake_local.state_machines import LocalStateMachines

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:fan-out-FanOut-X"
MAP_RUN = {
    "mapRunArn": "arn:map-run",
    "status": "RUNNING",
    "maxConcurrency": 2,
    "itemCounts": {"total": 5, "succeeded": 2, "failed": 1, "timedOut": 1, "running": 1, "pending": 0},
}


class FakeStepFunctions:
    """Step Functions whose execution reports ``statuses`` in turn (the last one from then on)."""

    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": "arn:execution"}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"status": status, **({"output": '{"committed": [0]}'} if status == "SUCCEEDED" else {})}

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        return {"mapRuns": [{"mapRunArn": MAP_RUN["mapRunArn"]}]}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        return MAP_RUN

    def stop_execution(self, executionArn: str, error: str) -> None:
        self.stopped.append(executionArn)


def stack() -> DeployedStack:
    template = {
        "Resources": {
            "FanOut": {"Type": "AWS::StepFunctions::StateMachine"},
            "Q": {"Type": "AWS::SQS::Queue"},
        }
    }
    return DeployedStack("s", "http://127.0.0.1:1", template, {}, {}, {"FanOut": ARN, "Q": "url"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_run_starts_by_logical_id_and_polls_until_the_execution_ends() -> None:
    # GIVEN an execution that runs for two polls, then succeeds
    sfn, clock = FakeStepFunctions(["RUNNING", "RUNNING", "SUCCEEDED"]), Clock()
    machines = LocalStateMachines(stack(), clock=clock, sleep=clock.sleep, sfn=sfn)
    seen: list[str] = []
    # WHEN it is run
    execution = machines.run("FanOut", {"pieces": 5}, timeout=10, on_progress=lambda e: seen.append(e.status))
    # THEN it started the state machine's ARN with the input as JSON and reported each poll
    assert (sfn.started[0]["stateMachineArn"], sfn.started[0]["input"]) == (ARN, '{"pieces": 5}')
    assert seen == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert (execution.status, execution.output) == ("SUCCEEDED", {"committed": [0]})
    # AND the Map Run's progress counts timed-out items as failed
    (map_run,) = execution.map_runs
    assert (map_run.total, map_run.succeeded, map_run.failed, map_run.running) == (5, 2, 2, 1)


def test_an_execution_past_the_timeout_is_stopped_and_reported() -> None:
    sfn, clock = FakeStepFunctions(["RUNNING"]), Clock()
    machines = LocalStateMachines(stack(), poll_interval=1, clock=clock, sleep=clock.sleep, sfn=sfn)
    with pytest.raises(LocalRunError, match="still RUNNING after 3 s"):
        machines.run("FanOut", {}, timeout=3)
    assert sfn.stopped == ["arn:execution"]


def test_only_state_machines_are_started() -> None:
    machines = LocalStateMachines(stack(), sfn=FakeStepFunctions(["RUNNING"]))
    assert machines.logical_ids() == ["FanOut"]
    with pytest.raises(TemplateError, match="Q is not a state machine"):
        machines.start("Q", {})

"""Waiting for a local execution (changelake_local.state_machines.LocalStateMachines)."""

from __future__ import annotations

from typing import Any

import pytest

from changelake_local.deployed_stack import DeployedStack
from changelake_local.errors import LocalRunError, TemplateError
from changelake_local.state_machines import Execution, FanOutRuns, LocalStateMachines

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


class ListedStepFunctions(FakeStepFunctions):
    """Step Functions listing ``executions`` (newest first, two per page), each in its own status."""

    def __init__(self, executions: dict[str, str]) -> None:
        super().__init__(["SUCCEEDED"])
        self.listed = executions

    def list_executions(self, stateMachineArn: str, nextToken: str | None = None) -> dict[str, Any]:
        arns = list(self.listed)
        start = int(nextToken or 0)
        page = {"executions": [{"executionArn": arn} for arn in arns[start : start + 2]]}
        return {**page, "nextToken": str(start + 2)} if start + 2 < len(arns) else page

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        status = self.listed[executionArn]
        return {
            "status": status,
            **({"error": "States.ExceedToleratedFailureThreshold"} if status == "FAILED" else {}),
        }


def test_fan_out_runs_wait_for_each_new_execution_once_and_count_its_pieces() -> None:
    # GIVEN three executions of the fan-out (over two pages), one of them failed
    sfn = ListedStepFunctions({"arn:e3": "SUCCEEDED", "arn:e2": "FAILED", "arn:e1": "SUCCEEDED"})
    machines = LocalStateMachines(stack(), sfn=sfn)
    runs = FanOutRuns(machines, logical_id="FanOut", timeout=5)

    # WHEN they are waited for, then again once a fourth started
    first = runs.wait()
    sfn.listed = {"arn:e4": "SUCCEEDED", **sfn.listed}
    second = runs.wait()

    # THEN each is reported once, oldest first, and the counts add up every Map Run's succeeded items
    assert [execution.arn for execution in first] == ["arn:e1", "arn:e2", "arn:e3"]
    assert [execution.arn for execution in second] == ["arn:e4"]
    assert runs.statuses() == {"SUCCEEDED": 3, "FAILED": 1}
    assert runs.pieces == 4 * MAP_RUN["itemCounts"]["succeeded"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("error", "cause", "told"),
    [
        (
            "InvalidEventError",
            '{"errorMessage": "plan: Extra inputs are not permitted", "errorType": "InvalidEventError", '
            '"stackTrace": ["  File app.py, line 46"]}',
            "InvalidEventError: plan: Extra inputs are not permitted",
        ),
        (
            "States.ExceedToleratedFailureThreshold",
            "The specified tolerated failure threshold was exceeded: 1 of 4 items failed",
            "States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was "
            "exceeded: 1 of 4 items failed",
        ),
        ("States.Timeout", None, "States.Timeout"),
    ],
)
def test_a_failure_is_told_in_one_line_without_the_stack_trace(
    error: str, cause: str | None, told: str
) -> None:
    # GIVEN a failed execution (a function error's cause is the runtime's JSON, stack trace included)
    execution = Execution("arn:e", "FAILED", None, error, cause, ())
    # WHEN its failure is told THEN the error and the message only
    assert execution.failure == told

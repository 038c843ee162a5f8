"""A SAM state machine deployed through the local deploy path runs on moto's ASL interpreter, its
Lambda tasks in this process: plan, a Distributed Map of pieces (MaxConcurrency 2), commit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from changelake_local.aws import client
from changelake_local.deploy import deploy
from changelake_local.deployed_stack import DeployedStack
from changelake_local.endpoint import MotoEndpoint, aws_environment
from changelake_local.functions import ExecutionEnvironments, LocalFunction, applied_environment
from changelake_local.state_machines import LocalStateMachines, serve_stack_functions

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "fixtures" / "fan_out"
MAX_CONCURRENCY = 2  # the fixture's Map
PIECES = 5


@dataclass
class FanOut:
    stack: DeployedStack
    machines: LocalStateMachines
    environments: dict[str, ExecutionEnvironments]


@pytest.fixture(scope="module")
def fan_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FanOut]:
    """The fixture template deployed on its own moto server, its functions served in-process."""
    template = tmp_path_factory.mktemp("fan_out") / "template.yaml"
    text = (FIXTURE / "template.yaml").read_text()
    template.write_text(re.sub(r"CodeUri: (\S+)", lambda m: f"CodeUri: {FIXTURE / m.group(1)}/", text))
    with MotoEndpoint(port=0) as endpoint:
        with applied_environment(aws_environment(endpoint.url)):  # only around the deploy (functions.py)
            stack = deploy(endpoint.url, template=template, stack_name="fan-out", required=())
        functions = {
            logical_id: LocalFunction(stack.function(logical_id)) for logical_id in stack.functions()
        }
        environments = serve_stack_functions(endpoint.lambdas, stack, functions)
        yield FanOut(stack, LocalStateMachines(stack, poll_interval=0.1), environments)


def max_overlap(pieces: list[dict[str, Any]]) -> int:
    """The most pieces that were working at one moment (from their start and end times)."""
    edges = sorted([(p["started"], 1) for p in pieces] + [(p["ended"], -1) for p in pieces])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_the_fan_out_succeeds_with_the_commits_output_and_bounded_concurrency(fan_out: FanOut) -> None:
    # GIVEN the deployed fan-out state machine (the SAM definition, substitutions applied by CloudFormation)
    assert fan_out.machines.logical_ids() == ["FanOut"]
    # WHEN it runs 5 pieces
    execution = fan_out.machines.run("FanOut", {"pieces": PIECES}, timeout=120)
    # THEN it succeeds with the commit's output, every piece in order, each at its first attempt
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["committed"] == list(range(PIECES))
    assert [piece["attempt"] for piece in execution.output["pieces"]] == [0] * PIECES
    # AND the pieces ran concurrently, never more than the Map's MaxConcurrency at once
    assert 1 < max_overlap(execution.output["pieces"]) <= MAX_CONCURRENCY
    # AND the Map Run reports every item succeeded
    (map_run,) = execution.map_runs
    assert (map_run.status, map_run.max_concurrency, map_run.succeeded, map_run.failed) == (
        "SUCCEEDED",
        MAX_CONCURRENCY,
        PIECES,
        0,
    )


def test_a_piece_that_raises_once_is_retried_by_the_retry_clause(fan_out: FanOut) -> None:
    # GIVEN pieces 1 and 3 raise PieceInterrupted at their first attempt
    failing = {"1": "once", "3": "once"}
    # WHEN the fan-out runs
    execution = fan_out.machines.run("FanOut", {"pieces": 4, "failing": failing}, timeout=120)
    # THEN the Retry clause ran them again and the execution succeeded with every piece
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.output["committed"] == [0, 1, 2, 3]
    assert [piece["attempt"] for piece in execution.output["pieces"]] == [0, 1, 0, 1]


def test_a_piece_that_always_fails_fails_the_map_run_as_on_aws(fan_out: FanOut) -> None:
    # GIVEN piece 2 raises at every attempt (the Retry clause gives up after 2 retries)
    commits_before = fan_out.environments["CommitFunction"].invocations
    # WHEN the fan-out runs
    execution = fan_out.machines.run("FanOut", {"pieces": 4, "failing": {"2": "always"}}, timeout=120)
    # THEN the Map Run fails over the tolerated failures (0 by default), as on AWS
    assert execution.status == "FAILED"
    assert execution.error == "States.ExceedToleratedFailureThreshold"
    (map_run,) = execution.map_runs
    assert (map_run.status, map_run.failed) == ("FAILED", 1)
    # AND the commit never ran on a missing piece
    assert fan_out.environments["CommitFunction"].invocations == commits_before
    history = client("stepfunctions", fan_out.stack.endpoint).get_execution_history(
        executionArn=execution.arn
    )
    assert "MapRunFailed" in [event["type"] for event in history["events"]]

"""The fan-out state machine of the translated template: the name the functions start, its
definition (statemachine/fan_out.asl.json) and what it may do (docs/deploy.md, "Fan-out")."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from changelake.exceptions import InvalidEventError
from changelake.pieces import MAX_PIECES, CommitRefusedError
from changelake.settings import CompactionSettings, SnapshotSettings
from changelake.snapshot.buckets import BaseNotCurrentError
from changelake_local.step_functions import definition_of
from tests.template.conftest import REPO_ROOT
from tests.template.test_template_contract import FAN_OUT_ARN, FAN_OUT_NAME, as_list, grants, render

pytestmark = pytest.mark.template

DEFINITION_FILE = REPO_ROOT / "statemachine" / "fan_out.asl.json"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
#: What each layer's states invoke: the plan, each piece and the commit go to one function.
LAYERS = {"Day": "SnapshotFunction", "Hour": "CompactionFunction"}


@pytest.fixture(scope="module")
def machine(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = resources["FanOutStateMachine"]
    return found


@pytest.fixture(scope="module")
def definition(machine: dict[str, Any]) -> dict[str, Any]:
    """The definition as Step Functions runs it, the function ARNs and MaxConcurrency substituted."""
    properties = {
        **machine["Properties"],
        "DefinitionSubstitutions": {
            "SnapshotFunctionArn": "arn:SnapshotFunction",
            "CompactionFunctionArn": "arn:CompactionFunction",
            "FanOutConcurrency": 40,
        },
    }
    parsed: dict[str, Any] = json.loads(definition_of(properties))
    return parsed


def states_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, those of the Map's item processors included, by name."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        if "ItemProcessor" in state:
            found.update(states_of(state["ItemProcessor"]))
    return found


def test_the_state_machine_has_the_fixed_name_both_functions_start(
    machine: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the translated state machine and the two batch functions' environments
    properties = machine["Properties"]
    environments = [resources[f]["Properties"]["Environment"]["Variables"] for f in LAYERS.values()]

    # WHEN the name it gets is compared with the ARN they start
    arns = [environment["FAN_OUT_STATE_MACHINE_ARN"] for environment in environments]

    # THEN it is a standard state machine named <stack>-fan-out, the ARN both functions are given
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    assert properties["StateMachineType"] == "STANDARD"
    assert properties["StateMachineName"] == {"Fn::Sub": FAN_OUT_NAME}
    assert arns == [{"Fn::Sub": FAN_OUT_ARN}] * 2
    # AND its definition is statemachine/fan_out.asl.json, the function ARNs and concurrency substituted
    assert properties["DefinitionString"] == DEFINITION_FILE.read_text()
    assert properties["DefinitionSubstitutions"] == {
        "SnapshotFunctionArn": {"Fn::GetAtt": ["SnapshotFunction", "Arn"]},
        "CompactionFunctionArn": {"Fn::GetAtt": ["CompactionFunction", "Arn"]},
        "FanOutConcurrency": {"Ref": "FanOutConcurrency"},
    }
    assert properties["TracingConfiguration"] == {"Enabled": True}


@pytest.mark.parametrize(
    ("parameter", "settings", "field"),
    [
        ("SnapshotFanOutMinBytes", SnapshotSettings, "fan_out_min_bytes"),
        ("SnapshotFanOutPieceBytes", SnapshotSettings, "fan_out_piece_bytes"),
        ("CompactionFanOutMinBytes", CompactionSettings, "fan_out_min_bytes"),
        ("CompactionFanOutPieceBytes", CompactionSettings, "fan_out_piece_bytes"),
    ],
)
def test_the_thresholds_default_to_the_settings_defaults(
    translated: dict[str, Any], parameter: str, settings: type[Any], field: str
) -> None:
    # GIVEN a fan-out threshold parameter and the settings field it sets
    spec = translated["Parameters"][parameter]

    # WHEN its default is compared with the field's (which carries the measurement that chose it)
    default = settings.model_fields[field].default

    # THEN they are the same, and the parameter accepts what the settings accept
    assert spec["Default"] == default
    assert spec["MinValue"] == (0 if field == "fan_out_min_bytes" else 1)


def test_a_fixed_count_of_pieces_is_empty_by_default_and_bounded_like_the_settings(
    translated: dict[str, Any],
) -> None:
    # GIVEN the FanOutPieces parameter
    spec = translated["Parameters"]["FanOutPieces"]

    # WHEN values are matched against its pattern
    def accepted(value: str) -> bool:
        return re.fullmatch(spec["AllowedPattern"], value) is not None

    # THEN empty (from the input bytes) and 1 to MAX_PIECES are accepted, nothing else
    assert spec["Default"] == ""
    assert [value for value in ("", "1", "4", "40", "999", str(MAX_PIECES)) if not accepted(value)] == []
    assert [value for value in ("0", "01", str(MAX_PIECES + 1), "-1", "4 ") if accepted(value)] == []


def test_the_definition_starts_with_a_day_or_an_hour(definition: dict[str, Any]) -> None:
    # GIVEN the definition's first state
    start = definition["States"][definition["StartAt"]]

    # WHEN its choice is read
    (choice,) = start["Choices"]

    # THEN an input with an hour plans the hour (compaction), any other the day (snapshot)
    assert start["Type"] == "Choice"
    assert (choice["Variable"], choice["IsPresent"], choice["Next"]) == ("$.hour", True, "PlanHour")
    assert start["Default"] == "PlanDay"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_each_layer_plans_runs_its_pieces_commits_and_plans_again(
    definition: dict[str, Any], layer: str
) -> None:
    # GIVEN the states of one layer
    states = definition["States"]
    plan, planned, commit = states[f"Plan{layer}"], states[f"{layer}Planned"], states[f"Commit{layer}"]
    function = f"arn:{LAYERS[layer]}"

    # WHEN the flow between them is followed
    done, has_pieces = planned["Choices"]
    pieces = states[has_pieces["Next"]]
    processor = pieces["ItemProcessor"]
    piece = processor["States"][processor["StartAt"]]

    # THEN the plan asks the function with "plan": true and keeps the answer beside the input
    assert (plan["Resource"], plan["Parameters"]["FunctionName"]) == (LAMBDA_INVOKE, function)
    assert plan["Parameters"]["Payload"]["plan"] is True
    assert {"table.$", "dt.$"} <= set(plan["Parameters"]["Payload"])
    assert ("hour.$" in plan["Parameters"]["Payload"]) == (layer == "Hour")
    assert (plan["ResultSelector"], plan["ResultPath"], plan["Next"]) == (
        {"Payload.$": "$.Payload"},
        "$.plan",
        f"{layer}Planned",
    )
    # AND done ends the execution, pieces go to the Map, anything else (out of time) plans again
    assert (done["Variable"], done["BooleanEquals"], states[done["Next"]]["Type"]) == (
        "$.plan.Payload.done",
        True,
        "Succeed",
    )
    assert (has_pieces["Variable"], has_pieces["IsPresent"]) == ("$.plan.Payload.pieces[0]", True)
    assert planned["Default"] == f"Plan{layer}"
    # AND the Map runs each piece's event as its own invocation, then the commit
    assert pieces["Type"] == "Map"
    assert pieces["ItemsPath"] == "$.plan.Payload.pieces"
    assert pieces["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert (piece["Resource"], piece["Parameters"]) == (
        LAMBDA_INVOKE,
        {"FunctionName": function, "Payload.$": "$"},
    )
    assert (pieces["ResultPath"], pieces["Next"]) == (None, f"Commit{layer}")
    # AND a bucket whose day before changed since the plan (BaseNotCurrentError) is not retried: it
    # ends without a record (so the commit is refused and the day planned again); slices have no such case
    if layer == "Day":
        (stale,) = piece["Catch"]
        assert stale["ErrorEquals"] == [BaseNotCurrentError.__name__]
        after = processor["States"][stale["Next"]]
        assert (after["Type"], after["End"]) == ("Pass", True)
        assert BaseNotCurrentError.__name__ in piece["Retry"][0]["ErrorEquals"]
        assert piece["Retry"][0]["MaxAttempts"] == 0
    else:
        assert "Catch" not in piece
    # AND the commit sends the plan's commit event, then plans again (done, or the next day)
    assert commit["Parameters"] == {"FunctionName": function, "Payload.$": "$.plan.Payload.commit"}
    assert (commit["ResultPath"], commit["Next"]) == (None, f"Plan{layer}")


@pytest.mark.parametrize("layer", list(LAYERS))
def test_a_refused_commit_plans_again_keeping_the_input(definition: dict[str, Any], layer: str) -> None:
    # GIVEN the commit state of one layer
    commit = definition["States"][f"Commit{layer}"]

    # WHEN its Catch and Retry clauses are read
    (catch,) = commit["Catch"]
    refusals = [r for r in commit["Retry"] if CommitRefusedError.__name__ in r["ErrorEquals"]]

    # THEN CommitRefusedError (the class changelake.pieces raises) is never retried as is: the
    # pieces are stale, so the execution plans again, the error kept beside the input
    assert catch["ErrorEquals"] == [CommitRefusedError.__name__]
    assert (catch["Next"], catch["ResultPath"]) == (f"Plan{layer}", "$.refused")
    assert [r["MaxAttempts"] for r in refusals] == [0]


def test_pieces_plans_and_commits_retry_failures_and_throttles_but_not_a_rejected_event(
    definition: dict[str, Any],
) -> None:
    # GIVEN every Task state
    tasks = {name: state for name, state in states_of(definition).items() if state["Type"] == "Task"}

    # WHEN their Retry clauses are read in order
    def policy(state: dict[str, Any]) -> list[tuple[tuple[str, ...], int]]:
        return [(tuple(r["ErrorEquals"]), r["MaxAttempts"]) for r in state["Retry"]]

    # THEN a rejected event is never retried, a throttled invocation (the functions' reserved
    # concurrency is shared by pieces, plans, commits and the nightly runs) waits up to about 30
    # minutes, and any other failure is retried twice with backoff
    assert len(tasks) == 6
    for name, state in tasks.items():
        rejected, throttled, failed = state["Retry"]
        assert InvalidEventError.__name__ in rejected["ErrorEquals"], name
        assert rejected["MaxAttempts"] == 0, name
        assert (throttled["ErrorEquals"], throttled["MaxAttempts"]) == (
            ["Lambda.TooManyRequestsException"],
            10,
        )
        waits = [
            min(throttled["IntervalSeconds"] * throttled["BackoffRate"] ** n, throttled["MaxDelaySeconds"])
            for n in range(throttled["MaxAttempts"])
        ]
        assert 20 * 60 <= sum(waits) <= 40 * 60, name
        assert (failed["ErrorEquals"], failed["MaxAttempts"]) == (["States.TaskFailed"], 2), name
        assert failed["BackoffRate"] > 1, name
        assert policy(state)[1:] == [(("Lambda.TooManyRequestsException",), 10), (("States.TaskFailed",), 2)]


def test_the_map_runs_at_most_the_documented_concurrency_and_tolerates_no_failure(
    definition: dict[str, Any], translated: dict[str, Any]
) -> None:
    # GIVEN the Map states and the FanOutConcurrency parameter (40 substituted by the fixture)
    maps = [state for state in states_of(definition).values() if state["Type"] == "Map"]
    parameter = translated["Parameters"]["FanOutConcurrency"]

    # WHEN their concurrency and tolerated failures are read
    concurrency = {state["MaxConcurrency"] for state in maps}

    # THEN both run FanOutConcurrency pieces at once (a documented, bounded parameter) and fail on
    # the first piece failed past its retries (AWS's default: no tolerated failure)
    assert len(maps) == 2
    assert concurrency == {40}
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (40, 2, 1000)
    assert [
        state for state in maps if set(state) & {"ToleratedFailureCount", "ToleratedFailurePercentage"}
    ] == []


def test_the_definition_uses_only_what_aws_and_the_local_interpreter_both_run(
    definition: dict[str, Any],
) -> None:
    # GIVEN every state (docs/local-mode.md, "State machines": the subset moto 5.2.5 runs)
    states = states_of(definition)

    # WHEN their fields are collected
    fields = {field for state in states.values() for field in state}

    # THEN JSONPath only, Lambda tasks only, no item batching, result writer or item reader
    assert "QueryLanguage" not in definition
    assert fields.isdisjoint(
        {"QueryLanguage", "ItemBatcher", "ResultWriter", "ItemReader", "Arguments", "Output"}
    )
    assert {state["Resource"] for state in states.values() if state["Type"] == "Task"} == {LAMBDA_INVOKE}
    assert {state["Type"] for state in states.values()} == {"Choice", "Task", "Map", "Pass", "Succeed"}


def test_the_state_machine_may_invoke_the_two_functions_and_run_its_own_children_only(
    resources: dict[str, dict[str, Any]], machine: dict[str, Any]
) -> None:
    # GIVEN the state machine's role
    role_ref = machine["Properties"]["RoleArn"]
    role = resources[role_ref["Fn::GetAtt"][0]]["Properties"]

    # WHEN its grants and managed policies are read
    managed = [render(arn).rsplit(":policy/", 1)[1] for arn in as_list(role.get("ManagedPolicyArns", []))]

    # THEN it invokes the two batch functions, starts its own Distributed Map children and watches
    # them (their ARNs are execution:<name>/<map run>:<id>), and writes X-Ray traces; nothing else
    executions = FAN_OUT_ARN.replace(":stateMachine:", ":execution:") + "/*"
    assert grants(role) == {
        ("lambda:InvokeFunction", "SnapshotFunction.Arn"),
        ("lambda:InvokeFunction", "CompactionFunction.Arn"),
        ("states:StartExecution", FAN_OUT_ARN),
        ("states:DescribeExecution", executions),
        ("states:StopExecution", executions),
    }
    assert managed == ["AWSXrayWriteOnlyAccess"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": ["states.amazonaws.com"]
    }

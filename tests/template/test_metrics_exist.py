"""Every metric the alarms and the dashboard watch exists: ours are the ones the handlers emit (same
namespace, same dimensions), AWS's name a real metric of a resource of this template.

The handlers run on real-format events against moto with the Powertools settings the template
gives them, and their EMF output is read back: a renamed metric or a changed dimension fails here
instead of leaving an alarm that never fires.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from changelake_testing.stream_records import change_batch
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import sqs_event

pytestmark = pytest.mark.template

Metric = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, name, dimensions

#: AWS's own metrics the template may watch, by namespace, and the dimension naming the resource.
AWS_METRICS = {
    "AWS/Lambda": ({"Errors", "Throttles", "IteratorAge", "Duration", "Invocations"}, "FunctionName"),
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
        "QueueName",
    ),
    "AWS/States": (
        {
            "ExecutionsStarted",
            "ExecutionsSucceeded",
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
        },
        "StateMachineArn",
    ),
}


def emf_metrics(printed: str) -> set[Metric]:
    """(namespace, metric, dimensions) of every EMF blob in ``printed``."""
    found: set[Metric] = set()
    for line in printed.splitlines():
        if not (line.startswith("{") and '"_aws"' in line):
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, str(blob[name])) for name in dimension_set)
                found.update((directive["Namespace"], m["Name"], dimensions) for m in directive["Metrics"])
    return found


@pytest.fixture
def emitted(
    stack: Stack,
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    resources: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> set[Metric]:
    """What every function of the template publishes on one ordinary invocation."""
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    environment = {**stack.environment, **powertools_environment(resources)}
    consumer = load_handler("stream_consumer", environment)
    aggregator = load_handler("aggregator", environment)
    compaction = load_handler("compaction", environment)
    redrive = load_handler("dlq_redrive", environment)
    snapshot = load_handler("snapshot", environment)
    invoked = {
        "StreamConsumerFunction",
        "AggregatorFunction",
        "CompactionFunction",
        "DlqRedriveFunction",
        "SnapshotFunction",
    }
    assert functions == invoked, f"give the new function an event here: {sorted(functions - invoked)}"
    records = change_batch(random.Random(7), 20, start=1_795_780_800.0)
    records[0]["dynamodb"]["NewImage"] = {"pk": {"X": "poison"}}  # a quarantined record too
    consumer.lambda_handler({"Records": records}, lambda_context)
    aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context)
    compaction.lambda_handler({"table": "orders", "dt": "2026-11-28"}, lambda_context)
    redrive.lambda_handler({"max_messages": 10}, lambda_context)
    snapshot.lambda_handler({"table": "orders", "dt": "2026-11-28"}, lambda_context)
    return emf_metrics(capsys.readouterr().out)


def powertools_environment(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """POWERTOOLS_SERVICE_NAME and _METRICS_NAMESPACE as the template sets them (the same for all)."""
    values = {
        name: resource["Properties"]["Environment"]["Variables"][name]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
        for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")
    }
    assert all(isinstance(v, str) for v in values.values())
    return values


def watched(resources: dict[str, dict[str, Any]]) -> Iterator[tuple[str, Metric]]:
    """(where, metric) of every alarm and every dashboard widget line; resource names as ${LogicalId}."""
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            dimensions = frozenset((d["Name"], reference(d["Value"])) for d in props.get("Dimensions", []))
            yield logical_id, (props["Namespace"], props["MetricName"], dimensions)
        if resource["Type"] == "AWS::CloudWatch::Dashboard":
            body = json.loads(props["DashboardBody"]["Fn::Sub"])
            for widget in body["widgets"]:
                for line in widget["properties"]["metrics"]:
                    fields = [f for f in line if isinstance(f, str)]
                    namespace, name, pairs = fields[0], fields[1], fields[2:]
                    dimensions = frozenset(zip(pairs[::2], pairs[1::2], strict=True))
                    yield f"{logical_id}: {widget['properties']['title']}", (namespace, name, dimensions)


def sub_reference(name: str) -> str:
    return "${" + name + "}"


def reference(value: Any) -> str:
    """A dimension value as written in a Sub string: ``${Logical}`` or ``${Logical.Attribute}``."""
    if isinstance(value, dict) and "Ref" in value:
        return sub_reference(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return sub_reference(".".join(value["Fn::GetAtt"]))
    return str(value)


def test_alarms_and_dashboard_watch_only_metrics_that_exist(
    resources: dict[str, dict[str, Any]], emitted: set[Metric]
) -> None:
    # GIVEN what the handlers emitted and what the template watches
    watching = list(watched(resources))
    assert len([w for w in watching if w[0].startswith("Dashboard")]) >= 20
    # THEN each of ours is emitted exactly so, and each of AWS's names a resource of the template
    problems = []
    for where, (namespace, name, dimensions) in watching:
        if namespace in AWS_METRICS:
            names, dimension = AWS_METRICS[namespace]
            kinds = {
                "FunctionName": "AWS::Lambda::Function",
                "QueueName": "AWS::SQS::Queue",
                "StateMachineArn": "AWS::StepFunctions::StateMachine",
            }
            resource_ids = {sub_reference(k) for k, v in resources.items() if v["Type"] == kinds[dimension]}
            resource_ids |= {
                sub_reference(f"{k}.QueueName")
                for k, v in resources.items()
                if v["Type"] == "AWS::SQS::Queue"
            }
            (dimension_name, value), *rest = sorted(dimensions)
            if name not in names or dimension_name != dimension or rest or value not in resource_ids:
                problems.append(f"{where}: {namespace} {name} {sorted(dimensions)}")
        elif (namespace, name, dimensions) not in emitted:
            problems.append(f"{where}: {namespace} {name} {sorted(dimensions)} is not emitted")
    assert problems == []


def test_the_success_metrics_the_staleness_alarms_watch_are_emitted(emitted: set[Metric]) -> None:
    # the 'not succeeded for a day' alarm relies on these (missing data counts as breaching)
    names = {name for namespace, name, _ in emitted if namespace == "Changelake"}
    assert {
        "CompactionSucceeded",
        "SnapshotSucceeded",
        "RedriveSucceeded",
        "Quarantined",
        "LostRanges",
    } <= names

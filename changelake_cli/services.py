"""The stack's other moving parts, read-only: queue depths, alarms, schedules, run records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from changelake.integrations.base import AwsAdapter
from changelake.runs import RUN_KINDS, RunKind, RunRecord, day_prefix
from changelake_cli.lake import LakeStore

#: Threads reading small objects (manifests, run records) at once: S3 latency, not CPU, bounds them.
READERS = 8


@dataclass(frozen=True)
class QueueDepth:
    logical_id: str
    name: str
    visible: int
    in_flight: int
    oldest_age_seconds: float | None  # CloudWatch's ApproximateAgeOfOldestMessage; None without data


class Queues(AwsAdapter):
    service = "sqs"

    def depth(self, logical_id: str, url: str) -> tuple[int, int]:
        attributes = self._request(
            "get_queue_attributes",
            url,
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


class CloudWatch(AwsAdapter):
    service = "cloudwatch"

    def alarms(self, names: Iterable[str]) -> list[dict[str, Any]]:
        wanted = sorted(names)
        found: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 100):  # DescribeAlarms takes at most 100 names
            response = self._request("describe_alarms", "alarms", AlarmNames=wanted[start : start + 100])
            found.extend(response.get("MetricAlarms", []))
        return found

    def alarms_named_from(self, prefix: str) -> list[dict[str, Any]]:
        response = self._request("describe_alarms", "alarms", AlarmNamePrefix=prefix)
        found: list[dict[str, Any]] = response.get("MetricAlarms", [])
        return found

    def oldest_message_age(self, queue_name: str, now: datetime) -> float | None:
        """The largest ApproximateAgeOfOldestMessage of the last 15 minutes (SQS reports every minute).

        Never measured by receiving: a receive counts towards a message's redrive to the DLQ."""
        response = self._request(
            "get_metric_statistics",
            f"metrics of {queue_name}",
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
        points = [float(p["Maximum"]) for p in response.get("Datapoints", [])]
        return max(points) if points else None


class Functions(AwsAdapter):
    service = "lambda"

    def environment(self, name: str) -> dict[str, str]:
        """The environment variables function ``name`` runs with."""
        response = self._request("get_function_configuration", f"lambda:{name}", FunctionName=name)
        variables = response.get("Environment", {}).get("Variables", {})
        return {key: str(value) for key, value in variables.items()}


#: The states of statemachine/fan_out.asl.json that ask a function for the plan of a day or an hour.
PLAN_STATES = ("PlanDay", "PlanHour")
#: Events of an execution's history read (newest first) to find its current plan: a plan, its
#: pieces and its commit take about 10 events, so the last plan is well within them.
_HISTORY_EVENTS = 200


class StepFunctions(AwsAdapter):
    """The fan-out state machine's executions, read-only."""

    service = "stepfunctions"

    def running(self, state_machine_arn: str) -> list[dict[str, Any]]:
        """Its RUNNING executions (ARN, name, start), newest first."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {"stateMachineArn": state_machine_arn, "statusFilter": "RUNNING"}
        while True:
            page = self._request("list_executions", state_machine_arn, **request)
            found += page.get("executions", [])
            if not page.get("nextToken"):
                return found
            request["nextToken"] = page["nextToken"]

    def execution_input(self, execution_arn: str) -> dict[str, Any]:
        described = self._request("describe_execution", execution_arn, executionArn=execution_arn)
        value = json.loads(described.get("input") or "{}")
        return value if isinstance(value, dict) else {}

    def current_plan(self, execution_arn: str) -> dict[str, Any] | None:
        """The answer of the execution's last plan (its pieces and commit) while it builds them;
        None while it plans (or before its first plan)."""
        history = self._request(
            "get_execution_history",
            execution_arn,
            executionArn=execution_arn,
            reverseOrder=True,
            maxResults=_HISTORY_EVENTS,
            includeExecutionData=True,
        )
        # newest first by event ID: moto 5.2.5 ignores reverseOrder (docs/local-mode.md)
        for event in sorted(history.get("events", []), key=lambda event: -int(event.get("id", 0))):
            if event.get("stateEnteredEventDetails", {}).get("name") in PLAN_STATES:
                return None
            exited = event.get("stateExitedEventDetails", {})
            if exited.get("name") in PLAN_STATES:
                answer = json.loads(exited.get("output") or "{}").get("plan", {}).get("Payload")
                return answer if isinstance(answer, dict) else None
        return None


class Scheduler(AwsAdapter):
    service = "scheduler"

    def schedule(self, name: str) -> dict[str, Any]:
        response: dict[str, Any] = self._request("get_schedule", f"schedule {name}", Name=name)
        return response


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def read_runs(
    store: LakeStore,
    days: list[datetime],
    kinds: Iterable[RunKind] = RUN_KINDS,
    *,
    on_unreadable: Callable[[str], None],
) -> list[RunRecord]:
    """The run records that started on ``days``, newest first; an object under ``_runs/`` that is not
    one is named to ``on_unreadable`` (the command says so on stderr) and left out."""
    keys = [
        item.key
        for kind in kinds
        for day in days
        for item in store.list_objects(day_prefix(kind, day))
        if item.key.endswith(".json")
    ]
    with ThreadPoolExecutor(READERS) as pool:
        bodies = list(pool.map(store.get, keys))
    records = []
    for key, body in zip(keys, bodies, strict=True):
        try:
            records.append(RunRecord.from_json(body))
        except ValueError as exc:
            on_unreadable(f"s3://{store.bucket}/{key} is not a run record ({exc}); left out")
    return sorted(records, key=lambda r: r.started_at, reverse=True)

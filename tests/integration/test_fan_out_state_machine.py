"""template.yaml's FanOutStateMachine (statemachine/fan_out.asl.json) on moto's ASL interpreter, as
the local deploy creates it, with fakes standing in for SnapshotFunction and CompactionFunction:
each answers the plan, piece and commit events as the contract says (docs/operations.md, "Fan-out")
and records what it was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from changelake.exceptions import StorageError
from changelake.pieces import CommitRefusedError
from changelake.snapshot.buckets import BaseNotCurrentError
from changelake_local.deploy import deploy
from changelake_local.deployed_stack import DeployedStack
from changelake_local.endpoint import MotoEndpoint, aws_environment
from changelake_local.functions import applied_environment
from changelake_local.invoke_server import LambdaInvokeServer
from changelake_local.state_machines import Execution, LocalStateMachines

pytestmark = pytest.mark.integration

MACHINE = "FanOutStateMachine"
DAY = {"table": "orders", "dt": "2026-11-27"}
HOUR = {**DAY, "hour": "12"}
TIMEOUT = 120.0


@dataclass
class FakeBatchFunction:
    """A batch function's side of the fan-out: the plans it answers, in order (the last one again
    once they run out), pieces that fail their first ``piece_failures[K]`` attempts, and commits
    that are refused ``refusals`` times first. Every event it is sent is recorded."""

    plans: list[dict[str, Any]]
    piece_failures: dict[int, int] = field(default_factory=dict)
    refusals: int = 0
    #: Pieces whose first ``stale_pieces[K]`` attempts find the day before changed since the plan.
    stale_pieces: dict[int, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.events.append(event)
            if event.get("plan"):
                return self.plans.pop(0) if len(self.plans) > 1 else self.plans[0]
            if event.get("commit"):
                return self._commit(event)
            return self._piece(event)

    def _piece(self, event: dict[str, Any]) -> dict[str, Any]:
        index = event["piece"]
        if self.stale_pieces.get(index, 0) > 0:
            self.stale_pieces[index] -= 1
            raise BaseNotCurrentError(f"orders/dt=2026-11-26: the day before {DAY['dt']} changed; plan again")
        if self.piece_failures.get(index, 0) > 0:
            self.piece_failures[index] -= 1
            raise StorageError(f"piece {index}: S3 answered 503 (a fault of the fake)")
        return {"piece": index, "written": 1}

    def _commit(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.refusals > 0:
            self.refusals -= 1
            raise CommitRefusedError(f"1 of {event['pieces']} pieces of generation g1 are missing (piece 0)")
        return {"committed": True, "pieces": event["pieces"]}

    def sent(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind, in the order they came: "plan", "piece" or "commit"."""
        return [event for event in self.events if kind_of(event) == kind]


def kind_of(event: dict[str, Any]) -> str:
    return "plan" if event.get("plan") else "commit" if event.get("commit") else "piece"


def planned(target: dict[str, Any], pieces: int) -> dict[str, Any]:
    """A plan that hands ``pieces`` pieces of ``target`` to the state machine, and their commit."""
    events = [{**target, "pieces": pieces, "piece": index} for index in range(pieces)]
    return {"done": False, **target, "pieces": events, "commit": {**target, "pieces": pieces, "commit": True}}


def done(target: dict[str, Any]) -> dict[str, Any]:
    return {"done": True, **target, "built": 1}


def out_of_time(target: dict[str, Any]) -> dict[str, Any]:
    return {"done": False, **target, "pieces": []}


@dataclass
class FanOut:
    stack: DeployedStack
    lambdas: LambdaInvokeServer
    machines: LocalStateMachines

    def serve(self, **fakes: FakeBatchFunction) -> None:
        """Serve ``fakes`` under the names of the template's functions (by logical ID)."""
        self.lambdas.serve({self.stack.physical(logical_id): fake for logical_id, fake in fakes.items()})

    def run(self, execution_input: dict[str, Any]) -> Execution:
        return self.machines.run(MACHINE, execution_input, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def fan_out() -> Iterator[FanOut]:
    """template.yaml deployed on its own moto server, the state machine substituted as on AWS."""
    with MotoEndpoint(port=0) as endpoint:
        with applied_environment(aws_environment(endpoint.url)):
            stack = deploy(endpoint.url)
        yield FanOut(stack, endpoint.lambdas, LocalStateMachines(stack, poll_interval=0.1))


def test_a_day_of_two_pieces_is_planned_built_committed_and_then_done(fan_out: FanOut) -> None:
    # GIVEN a snapshot function whose plan hands the day over in 2 buckets, then finds it done
    snapshot = FakeBatchFunction(plans=[planned(DAY, 2), done(DAY)])
    compaction = FakeBatchFunction(plans=[done(HOUR)])
    fan_out.serve(SnapshotFunction=snapshot, CompactionFunction=compaction)

    # WHEN the state machine runs for the day
    execution = fan_out.run(DAY)

    # THEN it succeeded: plan, both buckets (each once), the commit of 2, the plan that finds it done
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    around_the_pieces = snapshot.events[:1] + snapshot.events[3:]
    assert [kind_of(event) for event in around_the_pieces] == ["plan", "commit", "plan"]
    assert sorted(event["piece"] for event in snapshot.sent("piece")) == [0, 1]
    assert snapshot.sent("plan") == [{**DAY, "plan": True}] * 2
    assert snapshot.sent("commit") == [{**DAY, "pieces": 2, "commit": True}]
    assert compaction.events == []
    # AND its Map Run ran the 2 pieces, at most FanOutConcurrency at once
    (map_run,) = execution.map_runs
    assert (map_run.status, map_run.total, map_run.succeeded, map_run.failed) == ("SUCCEEDED", 2, 2, 0)
    assert map_run.max_concurrency == int(fan_out.stack.parameters["FanOutConcurrency"])
    assert execution.output["plan"]["Payload"]["done"] is True


def test_an_hour_goes_to_compaction_with_its_hour(fan_out: FanOut) -> None:
    # GIVEN a compaction function whose plan hands the hour over in 3 slices
    snapshot = FakeBatchFunction(plans=[done(DAY)])
    compaction = FakeBatchFunction(plans=[planned(HOUR, 3), done(HOUR)])
    fan_out.serve(SnapshotFunction=snapshot, CompactionFunction=compaction)

    # WHEN the state machine runs for an hour
    execution = fan_out.run(HOUR)

    # THEN compaction planned the hour, built its 3 slices and committed them; the snapshot never ran
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert compaction.sent("plan") == [{**HOUR, "plan": True}] * 2
    assert sorted(event["piece"] for event in compaction.sent("piece")) == [0, 1, 2]
    assert compaction.sent("commit") == [{**HOUR, "pieces": 3, "commit": True}]
    assert snapshot.events == []


def test_a_plan_out_of_time_with_no_pieces_plans_again(fan_out: FanOut) -> None:
    # GIVEN a plan that ran out of time (it built days in the invocation, no pieces yet), then done
    snapshot = FakeBatchFunction(plans=[out_of_time(DAY), done(DAY)])
    fan_out.serve(SnapshotFunction=snapshot)

    # WHEN the state machine runs
    execution = fan_out.run(DAY)

    # THEN it planned again, ran no Map and committed nothing
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [kind_of(event) for event in snapshot.events] == ["plan", "plan"]
    assert execution.map_runs == ()


def test_a_refused_commit_plans_again_and_builds_the_pieces_again(fan_out: FanOut) -> None:
    # GIVEN a commit refused once (a piece went stale: CommitRefusedError), the pieces planned twice
    snapshot = FakeBatchFunction(plans=[planned(DAY, 2), planned(DAY, 2), done(DAY)], refusals=1)
    fan_out.serve(SnapshotFunction=snapshot)

    # WHEN the state machine runs
    execution = fan_out.run(DAY)

    # THEN the refusal was caught (never retried as is): plan again, build again, commit, done
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [kind_of(event) for event in snapshot.events if kind_of(event) != "piece"] == [
        "plan",
        "commit",
        "plan",
        "commit",
        "plan",
    ]
    assert len(snapshot.sent("piece")) == 4
    assert len(execution.map_runs) == 2
    assert execution.output["refused"]["Error"] == CommitRefusedError.__name__


def test_a_piece_that_fails_twice_is_retried_and_the_day_is_committed(fan_out: FanOut) -> None:
    # GIVEN bucket 1 fails its first 2 attempts (a function error, States.TaskFailed)
    snapshot = FakeBatchFunction(plans=[planned(DAY, 2), done(DAY)], piece_failures={1: 2})
    fan_out.serve(SnapshotFunction=snapshot)

    # WHEN the state machine runs
    execution = fan_out.run(DAY)

    # THEN the Retry clause ran it a third time, and the day was committed
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert sorted(event["piece"] for event in snapshot.sent("piece")) == [0, 1, 1, 1]
    assert len(snapshot.sent("commit")) == 1
    (map_run,) = execution.map_runs
    assert (map_run.succeeded, map_run.failed) == (2, 0)


def test_a_piece_failing_past_its_retries_fails_the_execution_without_a_commit(fan_out: FanOut) -> None:
    # GIVEN bucket 0 fails every attempt (3: the first and 2 retries)
    snapshot = FakeBatchFunction(plans=[planned(DAY, 2), done(DAY)], piece_failures={0: 3})
    fan_out.serve(SnapshotFunction=snapshot)

    # WHEN the state machine runs
    execution = fan_out.run(DAY)

    # THEN the Map Run failed (no tolerated failure), so did the execution, and nothing was committed
    assert execution.status == "FAILED"
    assert execution.error == "States.ExceedToleratedFailureThreshold"
    (map_run,) = execution.map_runs
    assert (map_run.status, map_run.failed, map_run.succeeded) == ("FAILED", 1, 1)
    assert [event["piece"] for event in snapshot.sent("piece")].count(0) == 3
    assert snapshot.sent("commit") == []


def test_a_bucket_on_a_changed_day_before_is_not_retried_and_the_day_is_planned_again(
    fan_out: FanOut,
) -> None:
    # GIVEN bucket 0 finds the day before changed since the plan (late data: BaseNotCurrentError), so
    # it records nothing and the commit that follows is refused; the second plan builds it again
    snapshot = FakeBatchFunction(
        plans=[planned(DAY, 2), planned(DAY, 2), done(DAY)], stale_pieces={0: 1}, refusals=1
    )
    fan_out.serve(SnapshotFunction=snapshot)

    # WHEN the state machine runs
    execution = fan_out.run(DAY)

    # THEN the stale bucket was not retried (it would only fail again) nor did it fail the execution:
    # the Map ended, the commit was refused, the day was planned and built again, then done
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert [event["piece"] for event in snapshot.sent("piece")].count(0) == 2
    assert [kind_of(event) for event in snapshot.events if kind_of(event) != "piece"] == [
        "plan",
        "commit",
        "plan",
        "commit",
        "plan",
    ]
    assert [map_run.status for map_run in execution.map_runs] == ["SUCCEEDED", "SUCCEEDED"]

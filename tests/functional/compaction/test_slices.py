"""Hours built in slices on a moto server: slice workers, the commit, and each way they can die;
the fan-out's plan, and the nightly run handing busy hours to the state machine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from changelake.compaction.compactor import Compactor
from changelake.compaction.service import CompactionService
from changelake.compaction.sliced_hours import SlicedHours
from changelake.exceptions import InvalidEventError
from changelake.fan_out import FanOut
from changelake.integrations.s3 import S3Store
from changelake.late import LateMarkers
from changelake.pieces import CommitRefusedError, Piece
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.compaction.test_compaction import (
    CountingS3,
    changes,
    expected_lines,
    glob_lines,
    manifest,
    part_keys,
    partition_of,
    put_raw,
)
from tests.functional.fakes import FailingPutS3

HOUR = {"table": "orders", "dt": "2026-11-22", "hour": "12"}
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:changelake-fan-out"


def sliced(stack: Stack, client: Any = None) -> SlicedHours:
    return SlicedHours(Compactor(S3Store(stack.bucket, client=client or stack.s3)))


def build_all(stack: Stack, count: int, client: Any = None) -> None:
    for index in range(count):
        sliced(stack, client).build(partition_of(), Piece(index, count))


def records(stack: Stack) -> list[str]:
    return stack.keys(partition_of().prefix("compacted") + "_pieces/")


def test_slices_and_their_commit_publish_the_hour_one_invocation_would(stack: Stack) -> None:
    # GIVEN an hour of 300 changes in overlapping raw files
    batch = changes(61, 300)
    put_raw(stack, batch[:200])
    put_raw(stack, batch[150:])

    # WHEN it is built in 3 slices, which publish nothing, and then committed
    build_all(stack, 3)
    assert part_keys(stack, partition_of()) == []
    assert len(records(stack)) == 3
    result = sliced(stack).commit(partition_of(), 3)

    # THEN the hour holds each change once, in order, in parts named by slice, with summed counts
    assert result.status == "compacted"
    assert glob_lines(stack, partition_of()) == expected_lines(batch)
    document = manifest(stack, partition_of())
    assert (document["rows_in"], document["rows_out"], document["duplicates_removed"]) == (350, 300, 50)
    assert document["pieces"] == 3
    names = [key.rsplit("/", 1)[1] for key in part_keys(stack, partition_of())]
    assert [name.split("-", 2)[2] for name in names] == [f"{k:04d}-of-0003-00000.jsonl.gz" for k in range(3)]
    # AND the records are cleared
    assert records(stack) == []


def test_the_commit_refuses_a_missing_slice_and_changes_nothing(stack: Stack) -> None:
    # GIVEN slices 0 and 2 of 3 built, slice 1 not
    put_raw(stack, changes(62, 100))
    for index in (0, 2):
        sliced(stack).build(partition_of(), Piece(index, 3))
    before = stack.keys("compacted/")

    # WHEN the commit runs THEN it is refused, naming the missing slice, and nothing changed
    with pytest.raises(CommitRefusedError, match=r"1 of 3 pieces .* missing \(piece 1\)"):
        sliced(stack).commit(partition_of(), 3)
    assert stack.keys("compacted/") == before
    assert part_keys(stack, partition_of()) == []


def test_the_commit_refuses_slices_built_before_a_late_raw_file_and_a_rebuild_takes_it(stack: Stack) -> None:
    # GIVEN every slice built, then a late raw file arriving before the commit
    first = changes(63, 100)
    put_raw(stack, first)
    build_all(stack, 2)
    late = changes(64, 20, first=10**21)
    put_raw(stack, late)

    # WHEN the commit runs THEN it is refused (the slices are stale) and nothing is published
    with pytest.raises(CommitRefusedError, match="built from other inputs"):
        sliced(stack).commit(partition_of(), 2)
    assert part_keys(stack, partition_of()) == []
    assert not [key for key in stack.keys("compacted/") if key.endswith("_manifest.json")]
    # AND slices built again and committed publish the hour with the late file
    build_all(stack, 2)
    sliced(stack).commit(partition_of(), 2)
    assert glob_lines(stack, partition_of()) == expected_lines(first, late)


def test_a_slice_killed_before_its_record_makes_the_commit_refuse_until_it_is_built_again(
    stack: Stack,
) -> None:
    # GIVEN slice 1 of 2 dying when it stores its record (its parts written, left open)
    batch = changes(65, 120)
    put_raw(stack, batch)
    sliced(stack).build(partition_of(), Piece(0, 2))
    with pytest.raises(Exception, match="InternalError"):
        sliced(stack, FailingPutS3(stack.s3, partition_of().prefix("compacted") + "_pieces/")).build(
            partition_of(), Piece(1, 2)
        )

    # WHEN the commit runs THEN it is refused
    with pytest.raises(CommitRefusedError, match=r"piece 1\)"):
        sliced(stack).commit(partition_of(), 2)
    # AND the retried slice and the commit publish the hour
    sliced(stack).build(partition_of(), Piece(1, 2))
    assert sliced(stack).commit(partition_of(), 2).status == "compacted"
    assert glob_lines(stack, partition_of()) == expected_lines(batch)


def test_a_commit_killed_after_its_manifest_commit_is_rolled_forward_by_the_next(stack: Stack) -> None:
    # GIVEN every slice built, and a commit dying at its first completion (after its manifest commit)
    batch = changes(66, 150)
    put_raw(stack, batch)
    build_all(stack, 3)
    dying = CountingS3(stack.s3, fail_at=2)  # 1: the manifest PUT, 2: the first completion
    with pytest.raises(Exception, match="InternalError"):
        sliced(stack, dying).commit(partition_of(), 3)
    assert dying.failed_operation == "complete_multipart_upload"

    # WHEN the commit runs again (the state machine's retry, or the next plan)
    result = sliced(stack).commit(partition_of(), 3)

    # THEN it completes the committed manifest: the hour is whole, the records gone
    assert result.status == "completed"
    assert glob_lines(stack, partition_of()) == expected_lines(batch)
    assert records(stack) == []


def test_a_rerun_of_the_whole_execution_changes_nothing(stack: Stack) -> None:
    # GIVEN an hour built in slices and committed
    put_raw(stack, changes(67, 80))
    build_all(stack, 2)
    sliced(stack).commit(partition_of(), 2)
    before = {key: stack.read(key) for key in stack.keys("compacted/")}

    # WHEN the same slices and commit run again
    counting = CountingS3(stack.s3)
    for index in range(2):
        assert sliced(stack, counting).build(partition_of(), Piece(index, 2)).status == "unchanged"
    assert sliced(stack, counting).commit(partition_of(), 2).status == "unchanged"

    # THEN nothing was written
    assert counting.mutations == []
    assert {key: stack.read(key) for key in stack.keys("compacted/")} == before


def test_two_overlapping_commits_leave_one_generation(stack: Stack) -> None:
    # GIVEN every slice built, and commit A pausing before its manifest PUT while commit B runs whole
    batch = changes(68, 120)
    put_raw(stack, batch)
    build_all(stack, 2)
    other: list[Any] = []

    def commit_b(_: dict[str, Any]) -> None:
        other.append(sliced(stack).commit(partition_of(), 2))

    paused = CountingS3(stack.s3, hook=("put_object", commit_b))

    # WHEN A goes on
    result = sliced(stack, paused).commit(partition_of(), 2)

    # THEN B published the hour, A found it current, and the folder holds exactly one generation
    assert [r.status for r in other] == ["compacted"]
    assert result.status in ("unchanged", "completed")
    outputs = [output["key"] for output in manifest(stack, partition_of())["outputs"]]
    assert part_keys(stack, partition_of()) == outputs
    assert glob_lines(stack, partition_of()) == expected_lines(batch)


# -- through the handler, and the fan-out


def _environment(stack: Stack, **extra: str) -> dict[str, str]:
    return {**stack.environment, "COMPACTION_TARGET_BYTES": str(5 * 1024 * 1024), **extra}


def test_slice_and_commit_events_through_the_handler_return_their_summaries(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN an hour in raw/
    batch = changes(69, 90)
    put_raw(stack, batch)
    app = load_handler("compaction", _environment(stack))

    # WHEN its two slices and the commit are invoked as the state machine invokes them
    summaries = [app.lambda_handler(HOUR | {"slices": 2, "slice": index}, lambda_context) for index in (0, 1)]
    commit = app.lambda_handler(HOUR | {"slices": 2, "commit": True}, lambda_context)

    # THEN each slice reports its rows and parts, and the commit the hour
    assert sum(summary["rows_out"] for summary in summaries) == 90
    assert [summary["parts_written"] for summary in summaries] == [1, 1]
    assert summaries[1]["slices_built"] == ["orders/dt=2026-11-22/hour=12 slice 1 of 2"]
    assert commit["trigger"] == "commit"
    assert (commit["partitions"], commit["rows_out"], commit["compacted"]) == (1, 90, [partition_of().path])
    assert "done" not in commit
    assert glob_lines(stack, partition_of()) == expected_lines(batch)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (HOUR | {"slices": 4, "slice": 4}, "slice"),
        (HOUR | {"slices": 4, "slice": "1"}, "slice"),
        (HOUR | {"slices": 0, "slice": 0}, "slices"),
        (HOUR | {"slices": 1001, "commit": True}, "slices"),
        (HOUR | {"slices": 4}, "slice"),
        (HOUR | {"slices": 4, "commit": False}, "commit"),
        (HOUR | {"slices": 4, "commit": True, "force": 1}, "force"),
        ({"table": "orders", "dt": "2026-11-22", "slices": 2, "slice": 0}, "hour"),
        (HOUR | {"plan": "yes"}, "plan"),
        (HOUR | {"plan": True, "hour": "24"}, "hour"),
    ],
)
def test_malformed_fan_out_events_are_refused_naming_the_field(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, event: Any, field: str
) -> None:
    # GIVEN an hour a valid event would build
    put_raw(stack, changes(70, 10))
    app = load_handler("compaction", _environment(stack))

    # WHEN a malformed event is invoked THEN it is refused naming the field, and nothing is written
    with pytest.raises(InvalidEventError) as raised:
        app.lambda_handler(event, lambda_context)
    assert raised.value.field == field
    assert stack.keys("compacted/") == []


class FakeStateMachine:
    """The fan-out state machine as the service sees it: remembers what it was asked to start."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.started:
            return False
        self.started[name] = payload
        return True


def _service(
    stack: Stack, rule: FanOut, machine: FakeStateMachine | None = None, **options: Any
) -> CompactionService:
    store = S3Store(stack.bucket, client=stack.s3)
    return CompactionService(
        Compactor(store), markers=LateMarkers(store), fan_out=rule, state_machine=machine, **options
    )


def test_a_plan_below_the_threshold_compacts_the_hour_at_once(stack: Stack) -> None:
    # GIVEN an hour far below the fan-out threshold
    batch = changes(71, 50)
    put_raw(stack, batch)
    service = _service(stack, FanOut(ARN, min_bytes=10**9, piece_bytes=10**8))

    # WHEN the state machine asks for its plan THEN it is compacted here and done
    answer = service.handle(HOUR | {"plan": True}, FakeLambdaContext()).as_dict()
    assert (answer["done"], answer["compacted"]) == (True, [partition_of().path])
    assert "pieces" not in answer
    assert glob_lines(stack, partition_of()) == expected_lines(batch)


def test_a_plan_above_the_threshold_gives_the_slices_and_the_commit_that_build_the_hour(stack: Stack) -> None:
    # GIVEN an hour above a (small) threshold, in slices of a fixed count of 3
    batch = changes(72, 150)
    put_raw(stack, batch)
    service = _service(stack, FanOut(ARN, min_bytes=1, piece_bytes=1, pieces=3))
    context = FakeLambdaContext()

    # WHEN the state machine asks for the plan
    plan = service.handle(HOUR | {"plan": True}, context).as_dict()

    # THEN nothing is built yet; the answer lists the slice events and the commit event
    assert plan["done"] is False
    assert plan["pieces"] == [HOUR | {"slices": 3, "slice": index} for index in range(3)]
    assert plan["commit"] == HOUR | {"slices": 3, "commit": True}
    assert stack.keys("compacted/") == []
    # AND running them (as the Map and the commit state do) builds the hour; the next plan is done
    for event in plan["pieces"]:
        service.handle(json.loads(json.dumps(event)), context)
    service.handle(plan["commit"], context)
    assert glob_lines(stack, partition_of()) == expected_lines(batch)
    assert service.handle(HOUR | {"plan": True}, context).as_dict()["done"] is True


def test_the_nightly_run_hands_busy_hours_to_the_state_machine_and_keeps_their_late_markers(
    stack: Stack,
) -> None:
    # GIVEN yesterday's hour 12 above the threshold (with a late marker), and the state machine set
    batch = changes(73, 60)
    raw_key = put_raw(stack, batch)
    LateMarkers(S3Store(stack.bucket, client=stack.s3)).mark(partition_of(), raw_key.rsplit("/", 1)[1])
    machine = FakeStateMachine()
    night = datetime(2026, 11, 23, 0, 15, tzinfo=UTC)
    service = _service(
        stack, FanOut(ARN, min_bytes=1, piece_bytes=1), machine, lookback_days=0, clock=lambda: night
    )
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}

    # WHEN the nightly run arrives
    summary = service.handle(scheduled, FakeLambdaContext())

    # THEN the hour is handed to the state machine with the hour's event, named for the run, and not built
    assert summary.fanned_out == summary.handed_off == [partition_of().path]
    assert summary.compacted == []
    ((name, payload),) = machine.started.items()
    assert payload == HOUR
    assert name.startswith("compaction-orders-")
    assert name.endswith("-dt2026-11-22-hour12-20261123T0015")
    # AND a retry of that night's run starts nothing twice (the same execution name)
    assert service.handle(scheduled, FakeLambdaContext()).fanned_out == [partition_of().path]
    assert len(machine.started) == 1
    # AND its late marker stays until the hour is compacted
    assert len(stack.keys("late/compaction/")) == 1
    plan = service.handle(HOUR | {"plan": True}, FakeLambdaContext()).as_dict()
    for event in plan["pieces"]:
        service.handle(event, FakeLambdaContext())
    service.handle(plan["commit"], FakeLambdaContext())
    again = service.handle(scheduled, FakeLambdaContext())
    assert (again.unchanged, again.handed_off) == (1, [])
    assert stack.keys("late/compaction/") == []

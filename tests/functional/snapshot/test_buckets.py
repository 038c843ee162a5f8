"""Snapshot days built in buckets on a moto server: bucket workers, the commit, and what refuses."""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from changelake.fan_out import FanOut, execution_name
from changelake.pieces import CommitRefusedError, Piece
from changelake.snapshot.buckets import BaseNotCurrentError
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.service import SnapshotService
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import WrappingClient
from tests.functional.snapshot.support import builder, clock, data_keys, manifest, put_raw
from tests.functional.snapshot.test_days import D1, D2, D3, SEQ, three_days
from tests.snapshot_support import change

COUNTS = ("items", "changes_read", "duplicates", "changes_applied", "inserted", "updated", "removed", "kept")


def lines_of(stack: Stack, prefix: str, day: date) -> list[bytes]:
    """The day's lines as a reader of the folder's data files sees them, sorted (bucketed days are
    in key order within each bucket only)."""
    folder = f"{prefix}/orders/dt={day.isoformat()}/"
    keys = [key for key in stack.keys(folder) if key[len(folder) :].startswith("part-")]
    return sorted(line for key in keys for line in gzip.decompress(stack.read(key)).splitlines())


def in_buckets(snapshots: SnapshotBuilder, day: date, count: int) -> None:
    for index in range(count):
        assert snapshots.build_bucket("orders", day, Piece(index, count)).status == "built"
    assert snapshots.commit_buckets("orders", day, count).days[0].status == "built"


def single(stack: Stack, tmp_path: Path, target: date) -> SnapshotBuilder:
    reference = builder(stack, tmp_path, snapshot_prefix="single")
    reference.bring_up_to_date("orders", target)
    return reference


def test_days_built_in_buckets_hold_the_lines_of_single_invocations(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days of changes, and the days built by single invocations elsewhere
    put_raw(stack, three_days())
    single(stack, tmp_path, D3)
    snapshots = builder(stack, tmp_path)

    # WHEN day 1 is built in 3 buckets, day 2 in 2 (another count) and day 3 by one invocation on it
    in_buckets(snapshots, D1, 3)
    in_buckets(snapshots, D2, 2)
    chain = snapshots.bring_up_to_date("orders", D3)

    # THEN every day holds the single invocation's lines, its counts, and says how it was built
    assert [(day.day, day.status) for day in chain.days] == [
        (D1, "unchanged"),
        (D2, "unchanged"),
        (D3, "built"),
    ]
    for day, buckets in ((D1, 3), (D2, 2), (D3, None)):
        assert lines_of(stack, "snapshot", day) == lines_of(stack, "single", day)
        ours, theirs = manifest(stack, day), dict(manifest_of(stack, "single", day))
        assert [ours["counts"][name] for name in COUNTS] == [theirs["counts"][name] for name in COUNTS]
        assert ours["generation"] == theirs["generation"]
        assert ours["buckets"] == buckets
    assert {output["piece"] for output in manifest(stack, D1)["outputs"]} <= {0, 1, 2}
    # ... and the records of the pieces are gone once published
    assert stack.keys("snapshot/orders/dt=2026-11-21/_pieces/") == []


def manifest_of(stack: Stack, prefix: str, day: date) -> dict:
    import json

    return dict(json.loads(stack.read(f"{prefix}/orders/dt={day.isoformat()}/_manifest.json")))


def test_a_bucket_with_the_same_count_reads_only_its_own_files(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 built in 2 buckets
    put_raw(stack, three_days())
    single(stack, tmp_path, D2)
    snapshots = builder(stack, tmp_path)
    in_buckets(snapshots, D1, 2)

    # WHEN day 2 is built in 2 buckets as well
    in_buckets(snapshots, D2, 2)

    # THEN it holds the single invocation's lines
    assert lines_of(stack, "snapshot", D2) == lines_of(stack, "single", D2)


def test_the_commit_refuses_a_missing_piece_and_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 with only bucket 0 of 2 built
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    snapshots.build_bucket("orders", D1, Piece(0, 2))
    before = stack.keys("snapshot/")

    # WHEN the commit runs
    with pytest.raises(CommitRefusedError, match=r"1 of 2 pieces .* missing \(piece 1\)"):
        snapshots.commit_buckets("orders", D1, 2)

    # THEN nothing changed: no manifest, the record still there
    assert stack.keys("snapshot/") == before
    assert not any(key.endswith("_manifest.json") for key in before)


def test_a_bucket_refuses_a_day_whose_day_before_is_missing(stack: Stack, tmp_path: Path) -> None:
    # GIVEN days 1 and 2 in raw/, day 1 not built
    put_raw(stack, three_days())

    # WHEN a bucket of day 2 is asked for
    # THEN it is refused, naming the day before
    with pytest.raises(BaseNotCurrentError, match="dt=2026-11-21/: the day before 2026-11-22 is not built"):
        builder(stack, tmp_path).build_bucket("orders", D2, Piece(0, 2))
    assert stack.keys("snapshot/") == []


def test_a_bucket_refuses_a_day_whose_day_before_is_stale(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 built, then a late change of day 1 in raw/
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    snapshots.bring_up_to_date("orders", D1)
    put_raw(stack, [change("late", "2026-11-21T23:00:00+00:00", 10**30, name="INSERT")])

    # WHEN a bucket of day 2 is asked for
    # THEN it is refused: day 1 is stale
    with pytest.raises(BaseNotCurrentError, match="is stale"):
        snapshots.build_bucket("orders", D2, Piece(1, 2))
    assert stack.keys("snapshot/orders/dt=2026-11-22/") == []


class Killed(Exception):
    """The invocation died here (Lambda's timeout, a crash)."""


class DyingS3(WrappingClient):
    """S3 whose requests of ``operation`` on keys containing ``marker`` kill the invocation."""

    def __init__(self, real: Any, operation: str, marker: str) -> None:
        super().__init__(real)
        self.operation, self.marker = operation, marker

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.real, name)
        if name != self.operation:
            return call

        def dying(**kwargs: Any) -> Any:
            if self.marker in kwargs.get("Key", ""):
                raise Killed(name)
            return call(**kwargs)

        return dying


def folder_state(stack: Stack, day: date) -> dict[str, bytes]:
    folder = f"snapshot/orders/dt={day.isoformat()}/"
    return {key: stack.read(key) for key in stack.keys(folder)}


def test_the_commit_refuses_a_piece_built_before_a_late_raw_file_and_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 built in 2 buckets, not committed, then a late raw/ file of day 1
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    for index in range(2):
        snapshots.build_bucket("orders", D1, Piece(index, 2))
    put_raw(stack, [change("late", "2026-11-21T23:00:00+00:00", 10**30, name="INSERT")])
    before = folder_state(stack, D1)

    # WHEN the commit runs THEN it refuses, naming the pieces of other inputs, and nothing changed
    with pytest.raises(CommitRefusedError, match=r"2 of 2 pieces .* missing .* built from other inputs"):
        snapshots.commit_buckets("orders", D1, 2)
    assert folder_state(stack, D1) == before

    # AND the pieces built again then commit the day with the late item
    in_buckets(snapshots, D1, 2)
    assert any(b'"late"' in line for line in lines_of(stack, "snapshot", D1))


def test_a_piece_killed_before_its_record_leaves_the_commit_refusing(stack: Stack, tmp_path: Path) -> None:
    # GIVEN bucket 0 of day 1 built, and bucket 1 killed when it records its parts
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    snapshots.build_bucket("orders", D1, Piece(0, 2))
    dying = builder(stack, tmp_path, client=DyingS3(stack.s3, "put_object", "_pieces/"))
    with pytest.raises(Killed):
        dying.build_bucket("orders", D1, Piece(1, 2))

    # WHEN the commit runs THEN it refuses: bucket 1 is missing; nothing is published
    with pytest.raises(CommitRefusedError, match=r"missing \(piece 1\)"):
        snapshots.commit_buckets("orders", D1, 2)
    assert data_keys(stack, D1) == []

    # AND once bucket 1 is built again (the state machine's retry), the commit publishes the day
    snapshots.build_bucket("orders", D1, Piece(1, 2))
    assert snapshots.commit_buckets("orders", D1, 2).days[0].status == "built"
    single(stack, tmp_path, D1)
    assert lines_of(stack, "snapshot", D1) == lines_of(stack, "single", D1)


def test_a_commit_killed_after_its_manifest_is_rolled_forward_and_a_rerun_changes_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 built in 2 buckets, and a commit killed while it completes the uploads
    put_raw(stack, three_days())
    single(stack, tmp_path, D1)
    snapshots = builder(stack, tmp_path)
    for index in range(2):
        snapshots.build_bucket("orders", D1, Piece(index, 2))
    dying = builder(stack, tmp_path, client=DyingS3(stack.s3, "complete_multipart_upload", "dt="))
    with pytest.raises(Killed):
        dying.commit_buckets("orders", D1, 2)
    assert data_keys(stack, D1) == []  # committed, nothing completed yet

    # WHEN the commit runs again THEN it rolls the day forward
    assert snapshots.commit_buckets("orders", D1, 2).days[0].status == "completed"
    assert lines_of(stack, "snapshot", D1) == lines_of(stack, "single", D1)
    published = folder_state(stack, D1)

    # AND a rerun of the whole execution (every bucket, then the commit) changes nothing
    for index in range(2):
        assert snapshots.build_bucket("orders", D1, Piece(index, 2)).status == "unchanged"
    assert snapshots.commit_buckets("orders", D1, 2).days[0].status == "unchanged"
    assert folder_state(stack, D1) == published


class RacingS3(WrappingClient):
    """Runs ``race`` (another commit) just before this client's first manifest PUT."""

    def __init__(self, real: Any, race: Any) -> None:
        super().__init__(real)
        self.race = race

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"].endswith("_manifest.json") and self.race is not None:
            race, self.race = self.race, None
            race()
        return self.real.put_object(**kwargs)


def test_two_overlapping_commits_leave_one_generation(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 built in 2 buckets, and a second commit that runs while the first commits
    put_raw(stack, three_days())
    single(stack, tmp_path, D1)
    snapshots = builder(stack, tmp_path)
    for index in range(2):
        snapshots.build_bucket("orders", D1, Piece(index, 2))
    other: list[str] = []
    racing = builder(
        stack,
        tmp_path,
        client=RacingS3(
            stack.s3, lambda: other.append(snapshots.commit_buckets("orders", D1, 2).days[0].status)
        ),
    )

    # WHEN the first commits (losing its conditional PUT to the second)
    status = racing.commit_buckets("orders", D1, 2).days[0].status

    # THEN the second built the day, the first found it current, and the folder holds one generation
    assert (other, status) == (["built"], "unchanged")
    names = {key.rsplit("/", 1)[1] for key in data_keys(stack, D1)}
    assert names == {output["key"].rsplit("/", 1)[1] for output in manifest(stack, D1)["outputs"]}
    assert lines_of(stack, "snapshot", D1) == lines_of(stack, "single", D1)


def test_a_late_change_rebuilds_a_bucketed_day_and_every_day_after_it(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days built in buckets (3, then 1, then 2)
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    for day, count in ((D1, 3), (D2, 1), (D3, 2)):
        in_buckets(snapshots, day, count)

    # WHEN a late change of day 1 arrives and the chain is checked from day 1
    put_raw(stack, [change("a", "2026-11-21T23:00:00+00:00", 10**30, v="late")])
    chain = snapshots.bring_up_to_date("orders", D3, check_from=D1)

    # THEN every day is rebuilt (by one invocation now) and equals the single invocations' days
    assert [(day.day, day.status) for day in chain.days] == [(D1, "built"), (D2, "built"), (D3, "built")]
    single(stack, tmp_path, D3)
    for day in (D1, D2, D3):
        assert lines_of(stack, "snapshot", day) == lines_of(stack, "single", day)


@dataclass
class FakeStateMachine:
    """The fan-out state machine: records the executions started (a name once, as Step Functions)."""

    started: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.started:
            return False
        self.started[name] = payload
        return True


NIGHT = "2026-11-24T00:45:00+00:00"  # the scheduled run after D3
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:changelake-fan-out"


def raw_bytes(stack: Stack, prefix: str) -> int:
    return sum(
        item["Size"] for item in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix)["Contents"]
    )


def service(
    stack: Stack, tmp_path: Path, fan_out: FanOut, machine: FakeStateMachine | None = None
) -> SnapshotService:
    snapshots = builder(stack, tmp_path, clock=clock(NIGHT))
    return SnapshotService(snapshots, fan_out=fan_out, state_machine=machine, clock=clock(NIGHT))


def execute(run: SnapshotService, table: str, target: str) -> list[dict[str, Any]]:
    """What the state machine does with its input: plan, the pieces, the commit, plan again."""
    plans = []
    while True:
        plan = run.handle({"table": table, "dt": target, "plan": True}, FakeLambdaContext()).as_dict()
        plans.append(plan)
        if plan["done"]:
            return plans
        for piece in plan["pieces"]:
            run.handle(piece, FakeLambdaContext())
        if plan["pieces"]:
            run.handle(plan["commit"], FakeLambdaContext())


def test_the_plan_builds_small_days_here_and_hands_back_large_ones_in_buckets(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN three days, and a threshold day 1 stays under (its raw/ objects alone) but days 2 and 3,
    # built on it, pass
    put_raw(stack, three_days())
    single(stack, tmp_path, D3)
    day_one = raw_bytes(stack, "raw/orders/dt=2026-11-21/")
    run = service(stack, tmp_path, FanOut(None, min_bytes=day_one + 1, piece_bytes=1, pieces=3))

    # WHEN the state machine runs for day 3
    plans = execute(run, "orders", D3.isoformat())

    # THEN the first plan built day 1 and handed back day 2 in 4 buckets (3, rounded up to a power of
    # two), the next day 3, then done
    assert [(plan["done"], plan["dt"], len(plan["pieces"])) for plan in plans] == [
        (False, "2026-11-22", 4),
        (False, "2026-11-23", 4),
        (True, "2026-11-23", 0),
    ]
    assert plans[0]["built"] == ["orders/dt=2026-11-21"]
    assert plans[0]["pieces"][2] == {"table": "orders", "dt": "2026-11-22", "buckets": 4, "bucket": 2}
    assert plans[0]["commit"] == {"table": "orders", "dt": "2026-11-22", "buckets": 4, "commit": True}
    # ... and the days equal single invocations'
    for day in (D1, D2, D3):
        assert lines_of(stack, "snapshot", day) == lines_of(stack, "single", day)
    assert (manifest(stack, D1)["buckets"], manifest(stack, D2)["buckets"]) == (None, 4)


def test_the_nightly_run_hands_a_large_day_to_the_state_machine_and_goes_on(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN two tables: orders with three days, invoices with one small day; a threshold only orders'
    # days pass, and a state machine
    put_raw(stack, three_days())
    put_raw(stack, [change("x", "2026-11-23T01:00:00+00:00", SEQ, name="INSERT", table="invoices")])
    small = raw_bytes(stack, "raw/invoices/")
    machine = FakeStateMachine()
    run = service(stack, tmp_path, FanOut(ARN, min_bytes=small + 1, piece_bytes=1), machine)

    # WHEN the nightly run runs
    summary = run.handle({"detail-type": "Scheduled Event"}, FakeLambdaContext()).as_dict()

    # THEN orders' first large day is handed to the state machine with the chain's target, once,
    # under the run's execution name, and invoices was built here
    name = execution_name("snapshot", "orders", "dt=2026-11-21", datetime.fromisoformat(NIGHT))
    assert machine.started == {name: {"table": "orders", "dt": "2026-11-23"}}
    assert summary["handed_off"] == ["orders/dt=2026-11-21"]
    assert summary["built"] == ["invoices/dt=2026-11-23"]
    assert stack.keys("snapshot/orders/") == []
    # AND a retried run starts nothing twice
    run.handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())
    assert len(machine.started) == 1


def test_without_a_state_machine_the_nightly_run_builds_every_day_itself(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN a threshold every day passes, but no state machine
    put_raw(stack, three_days())
    run = service(stack, tmp_path, FanOut(None, min_bytes=1, piece_bytes=1))

    # WHEN the nightly run runs THEN it builds the days itself
    summary = run.handle({"detail-type": "Scheduled Event"}, FakeLambdaContext()).as_dict()
    assert summary["built"] == [f"orders/dt={day.isoformat()}" for day in (D1, D2, D3)]
    assert summary["handed_off"] == []


def test_a_commit_on_a_day_before_gone_stale_is_refused_by_the_name_the_state_machine_catches(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 built, day 2's buckets built, then a late change of day 1
    put_raw(stack, three_days())
    snapshots = builder(stack, tmp_path)
    snapshots.bring_up_to_date("orders", D1)
    for index in range(2):
        snapshots.build_bucket("orders", D2, Piece(index, 2))
    put_raw(stack, [change("late", "2026-11-21T23:00:00+00:00", 10**30, name="INSERT")])

    # WHEN day 2 is committed THEN it is refused as a CommitRefusedError itself (its Lambda error
    # type is what the state machine's Catch names), and nothing of day 2 is published
    with pytest.raises(CommitRefusedError, match="is stale") as refused:
        snapshots.commit_buckets("orders", D2, 2)
    assert type(refused.value) is CommitRefusedError
    assert data_keys(stack, D2) == []


def test_the_handler_runs_the_plan_the_buckets_and_the_commit(
    stack: Stack, load_handler: HandlerLoader
) -> None:
    # GIVEN SnapshotFunction with a threshold every day passes and 2 pieces (as `make run --pieces 2`)
    put_raw(stack, three_days())
    handler = load_handler("snapshot", stack.environment, FAN_OUT_MIN_BYTES="1", FAN_OUT_PIECES="2")

    # WHEN the state machine's events come in: a plan, its buckets, its commit
    plan = handler.lambda_handler({"table": "orders", "dt": "2026-11-21", "plan": True}, FakeLambdaContext())
    pieces = [handler.lambda_handler(piece, FakeLambdaContext()) for piece in plan["pieces"]]
    commit = handler.lambda_handler(plan["commit"], FakeLambdaContext())
    again = handler.lambda_handler({"table": "orders", "dt": "2026-11-21", "plan": True}, FakeLambdaContext())

    # THEN the plan hands back day 1 in 2 buckets, each bucket reports its parts, the commit the
    # day, and the next plan is done
    assert (plan["done"], plan["dt"], len(plan["pieces"])) == (False, "2026-11-21", 2)
    assert [(piece["trigger"], piece["bucket"], piece["status"]) for piece in pieces] == [
        ("bucket", 0, "built"),
        ("bucket", 1, "built"),
    ]
    assert sum(piece["items"] for piece in pieces) == commit["items"] == 3
    assert all(piece["parts_written"] >= 1 for piece in pieces)
    assert (commit["trigger"], commit["status"], commit["built"]) == (
        "commit",
        "built",
        ["orders/dt=2026-11-21"],
    )
    assert again["done"] is True

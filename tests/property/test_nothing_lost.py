"""Nothing is lost and compacted/ is exactly once, under random streams, faults and deliveries.

Each example: a random stream of changes (several tables, two days, deletes and re-inserts,
oversized items, poison records) runs through the real handlers on a moto server while the fault
layer fails AWS requests and crashes invocations on a random schedule, and the Lambda model
redelivers, reorders and retries as Lambda does. Then the faults clear; draining, redrive and
compaction must leave every change in raw/ or quarantine and each event_id once in compacted/,
and the snapshot function must leave every day of each table equal to a model of the table.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType

import botocore.retries.standard
import pytest
from hypothesis import given

from changelake.integrations.base import CLIENT_HOOKS
from changelake.integrations.sqs import Backoff
from changelake_local.faults import FaultInjector, FaultProfile
from changelake_local.lake import LakeWatcher, StreamLedger, verify
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack, create_stack, reset_moto
from tests.functional.snapshot.support import read_snapshot
from tests.property.conftest import REPORT
from tests.property.lambda_model import Invocations, QueuePoller, StreamShard, invoke
from tests.property.scenarios import DAYS, Scenario, Stream, day_of, model_table, scenarios, stream_of

#: Rounds of drain-then-redrive after the faults clear (one suffices; more is a hang guard).
SETTLE_ROUNDS = 5


@dataclass
class Tally:
    scenarios: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    records: int = 0
    quarantined: int = 0
    lost: int = 0
    duplicated: int = 0
    snapshot_days: int = 0
    snapshot_items: int = 0
    invocations: Invocations = field(default_factory=Invocations)

    def lines(self) -> list[str]:
        kinds: Counter[str] = Counter()
        for name, count in self.faults.items():
            kinds[name.split(":")[0]] += count
        calls = self.invocations
        return [
            f"property nothing-lost: scenarios {self.scenarios}, faults injected {self.faults.total()} "
            f"({', '.join(f'{kind} {count}' for kind, count in sorted(kinds.items()))}), "
            f"records checked {self.records} ({self.quarantined} quarantined), "
            f"lost {self.lost}, duplicated {self.duplicated}, "
            f"snapshot days checked {self.snapshot_days} ({self.snapshot_items} items)",
            f"property nothing-lost: invocations {calls.stream_invocations} stream + "
            f"{calls.queue_invocations} queue, function errors {calls.function_errors}, "
            f"partial failures {calls.partial_failures}, redeliveries {calls.redeliveries}",
        ]


@pytest.fixture(scope="module")
def tally(record_testsuite_property: Callable[[str, object], None]) -> Iterator[Tally]:
    """The totals over every example, printed at the end (the terminal and the JUnit report)."""
    totals = Tally()
    yield totals
    for line in totals.lines():
        print(line)
        REPORT.append(line)
    record_testsuite_property("nothing_lost", " | ".join(totals.lines()))


@pytest.fixture(scope="module")
def no_backoff_waits() -> Iterator[None]:
    """botocore's and the SQS adapter's retries go on at once: the schedule, not the clock,
    decides what fails."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
        patch.setattr(Backoff, "pause", lambda self, attempt: None)
        yield


@dataclass
class Functions:
    consumer: ModuleType
    aggregator: ModuleType
    compaction: ModuleType
    redrive: ModuleType
    snapshot: ModuleType


def _cold_start(
    stack: Stack, load_handler: HandlerLoader, faults: FaultInjector, spill_dir: Path
) -> Functions:
    CLIENT_HOOKS[:] = [faults.attach]
    env = stack.environment
    return Functions(
        load_handler("stream_consumer", env),
        load_handler("aggregator", env),
        load_handler("compaction", env),
        load_handler("dlq_redrive", env),
        load_handler("snapshot", env, SNAPSHOT_SPILL_DIR=str(spill_dir)),
    )


@dataclass
class Run:
    """One example's functions, Lambda model and fault schedule."""

    functions: Functions
    poller: QueuePoller
    rng: random.Random
    faults: FaultInjector
    calls: Invocations = field(default_factory=Invocations)


def _stream_with_faults(stream: Stream, run: Run) -> None:
    """Until every shard is consumed: a random shard's next batch, or a poll of ChangeQueue."""
    shards = [StreamShard(records) for records in stream.records.values()]
    while pending := [shard for shard in shards if not shard.done]:
        if run.rng.random() < 0.6:
            run.rng.choice(pending).deliver(run.functions.consumer, run.rng, run.faults, run.calls)
        else:
            run.poller.poll(run.functions.aggregator, run.rng, run.faults, run.calls)


def _compact(stream: Stream, run: Run) -> None:
    for table, day in sorted(stream.days()):
        invoke(run.functions.compaction, {"table": table, "dt": day}, run.faults, run.calls)


def _snapshot_days(stream: Stream) -> dict[str, list[date]]:
    """Each table's snapshot days: from its first change in raw/ to the scenario's last day."""
    days = {}
    for table in stream.records:
        if stored := stream.stored(table):
            first = day_of(stored[0])
            days[table] = [first + timedelta(days=n) for n in range((DAYS[-1] - first).days + 1)]
    return days


def _snapshot_events(stream: Stream) -> list[dict[str, str]]:
    """The manual event of each table's last day (it builds every missing or stale day before)."""
    return [{"table": table, "dt": days[-1].isoformat()} for table, days in _snapshot_days(stream).items()]


def _queue_depth(stack: Stack, url: str) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def _settle(run: Run) -> None:
    """With the faults cleared: drain ChangeQueue, redrive ChangeDLQ, until both are empty."""
    for _ in range(SETTLE_ROUNDS):
        while run.poller.poll(run.functions.aggregator, run.rng, run.faults, run.calls):
            pass
        stack = run.poller.stack
        if _queue_depth(stack, stack.dlq_url) == 0 and _queue_depth(stack, stack.queue_url) == 0:
            return
        run.functions.redrive.lambda_handler({}, FakeLambdaContext())
    raise AssertionError("queues did not empty after the faults cleared")


def _check_snapshots(stack: Stack, stream: Stream, tally: Tally) -> None:
    """Every snapshot day of every table holds exactly the model table, value for value."""
    for table, days in _snapshot_days(stream).items():
        for day in days:
            expected = model_table(stream, table, day)
            actual = {dict(key)["pk"]: document for key, document in read_snapshot(stack, day, table).items()}
            assert sorted(actual) == sorted(expected), f"{table} {day}: the items alive at its end"
            for key, model in expected.items():
                assert actual[key]["item"] == model.item, f"{table} {day} {key}"
                assert actual[key]["event_id"] == model.event_id, f"{table} {day} {key}"
            tally.snapshot_days += 1
            tally.snapshot_items += len(expected)


@given(scenario=scenarios)
def test_every_change_lands_once_whatever_fails(
    scenario: Scenario,
    endpoint: str,
    load_handler: HandlerLoader,
    tally: Tally,
    no_backoff_waits: None,
    tmp_path: Path,
) -> None:
    # GIVEN a random stream, a fresh stack and a random fault schedule on the functions' clients
    reset_moto(endpoint)
    stack = create_stack(endpoint)
    stream = stream_of(scenario)
    profile = FaultProfile(
        "property", "drawn", request_rate=scenario.request_fault_rate, crash_rate=scenario.crash_rate
    )
    faults = FaultInjector(profile, seed=scenario.fault_seed)
    rng = random.Random(scenario.delivery_seed)
    try:
        run = Run(_cold_start(stack, load_handler, faults, tmp_path), QueuePoller(stack), rng, faults)

        # WHEN the stream is delivered under faults, compaction and snapshots run once under faults too,
        _stream_with_faults(stream, run)
        _compact(stream, run)
        for event in _snapshot_events(stream):
            invoke(run.functions.snapshot, event, run.faults, run.calls)
        # AND then the faults clear: drain, redrive, compact and snapshot again
        faults.clear()
        _settle(run)
        for table, day in sorted(stream.days()):
            run.functions.compaction.lambda_handler({"table": table, "dt": day}, FakeLambdaContext())
        for event in _snapshot_events(stream):
            run.functions.snapshot.lambda_handler(event, FakeLambdaContext())
    finally:
        CLIENT_HOOKS.clear()

    # THEN every change is in raw/ or quarantine, poison exactly in quarantine, each once in compacted/
    state = LakeWatcher(endpoint, stack.bucket, StreamLedger()).scan(full=True)
    expected = stream.event_ids()
    verification = verify(expected, state)
    tally.scenarios += 1
    tally.faults.update(faults.injected)
    tally.records += len(expected)
    tally.quarantined += len(stream.poison_ids)
    tally.lost += len(verification.missing_in_raw) + len(verification.missing_in_compacted)
    tally.duplicated += len(verification.duplicated_in_compacted)
    for name in (
        "stream_invocations",
        "queue_invocations",
        "function_errors",
        "partial_failures",
        "redeliveries",
    ):
        setattr(tally.invocations, name, getattr(tally.invocations, name) + getattr(run.calls, name))
    assert verification.ok, verification
    assert state.quarantined_ids & expected == stream.poison_ids
    assert state.raw_ids == expected - stream.poison_ids
    # AND every snapshot day equals the model of its table at the end of that day
    _check_snapshots(stack, stream, tally)

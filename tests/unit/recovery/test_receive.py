"""What both recoveries share (``changelake.recovery.receive``): pacing, the deadline, the
receive, hold and release loop, and the summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from changelake.exceptions import DeliveryError, QueueUnavailableError
from changelake.recovery.async_failures import AsyncReplayResult
from changelake.recovery.dlq import RedriveResult
from changelake.recovery.receive import MAX_LISTED_IDS, Deadline, HoldingRun, RateLimiter, RecoveryResult
from changelake.recovery.stream_failures import ReplayResult

# ------------------------------------------------------------------ pacing and deadlines


class FakeTime:
    def __init__(self) -> None:
        self.now = 50.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_rate_limiter_spaces_items_evenly() -> None:
    # GIVEN 2 items per second
    clock = FakeTime()
    limiter = RateLimiter(2.0, monotonic=clock.monotonic, sleep=clock.sleep)

    # WHEN batches of 2 go, the second half a second after a 1.5 s pause
    limiter.wait()
    limiter.admit(2)
    limiter.wait()
    limiter.admit(2)
    clock.now += 1.5
    limiter.wait()

    # THEN the first went at once, the second waited a second, the third not at all
    assert clock.slept == [1.0]
    assert limiter.batch_size(10) == 2


def test_no_rate_limit_never_waits() -> None:
    clock = FakeTime()
    limiter = RateLimiter(None, monotonic=clock.monotonic, sleep=clock.sleep)
    limiter.admit(1000)
    limiter.wait()
    assert (clock.slept, limiter.batch_size(10)) == ([], 10)


def test_a_slow_rate_still_sends_one_at_a_time() -> None:
    limiter = RateLimiter(0.2)
    assert limiter.batch_size(10) == 1


def test_the_deadline_keeps_its_safety_margin() -> None:
    # GIVEN an invocation with 20 s left and a 15 s margin
    remaining = [20_000]
    deadline = Deadline(lambda: remaining[0], margin_ms=15_000)

    # THEN 5 s of work are left, and messages are hidden until just after the invocation
    assert not deadline.expired()
    assert deadline.seconds_left() == 5.0
    assert deadline.hold_seconds() == 50
    # WHEN the remaining time reaches the margin THEN it has expired
    remaining[0] = 15_000
    assert deadline.expired()
    assert deadline.seconds_left() == 0.0


def test_hold_time_never_exceeds_the_sqs_maximum() -> None:
    assert Deadline(lambda: 10**9).hold_seconds() == 43_200


# ------------------------------------------------------------------ the loop


def message(number: int, receipt: str = "") -> dict[str, Any]:
    return {"MessageId": f"id-{number}", "ReceiptHandle": receipt or f"r-{number}", "Body": "{}"}


@dataclass
class ScriptedQueue:
    """A queue whose receives return ``batches`` in turn (an exception is raised), then nothing."""

    batches: list[list[dict[str, Any]] | Exception]
    visible: int = 7
    received_sizes: list[int] = field(default_factory=list)
    hold_timeouts: list[int | None] = field(default_factory=list)
    made_visible: list[str] = field(default_factory=list)
    deleted: list[dict[str, str]] = field(default_factory=list)
    fail_visibility: bool = False
    delete_error: DeliveryError | None = None

    def receive(self, max_messages: int = 10, *, visibility_timeout: int | None = None) -> list[Any]:
        self.received_sizes.append(max_messages)
        self.hold_timeouts.append(visibility_timeout)
        if not self.batches:
            return []
        batch = self.batches.pop(0)
        if isinstance(batch, Exception):
            raise batch
        return batch

    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None:
        if self.fail_visibility:
            raise QueueUnavailableError("dlq: unreachable")
        assert timeout_seconds == 0
        self.made_visible.append(receipt_handle)

    def delete_batch(self, receipts: dict[str, str]) -> dict[str, DeliveryError]:
        if self.delete_error is not None:
            raise self.delete_error
        self.deleted.append(dict(receipts))
        return {}

    def approximate_visible(self) -> int:
        return self.visible


def run_over(queue: ScriptedQueue, deadline: Deadline | None = None) -> HoldingRun[RecoveryResult]:
    return HoldingRun(queue, deadline or Deadline(lambda: 600_000), RecoveryResult())  # type: ignore[arg-type]


def test_a_run_holds_what_it_does_not_delete_and_releases_it_at_the_end() -> None:
    # GIVEN a queue with two batches
    queue = ScriptedQueue([[message(1), message(2)], [message(3)]])

    # WHEN a run deletes the first message of each batch and holds the others
    with run_over(queue) as run:
        for batch in run.batches(lambda: 100):
            run.delete({"e": batch[0]["ReceiptHandle"]})
            for held in batch[1:]:
                run.hold(held)

    # THEN the deleted ones are gone, the held one is visible again, and the queue was emptied
    assert queue.deleted == [{"e": "r-1"}, {"e": "r-3"}]
    assert queue.made_visible == ["r-2"]
    assert (run.outcome.stopped, run.outcome.remaining_estimate, run.outcome.errors) == ("empty", 7, [])
    # AND every receive hid its messages for the rest of the run (and 30 s beyond)
    assert queue.hold_timeouts == [630, 630, 630]


def test_a_message_received_twice_in_one_run_is_handled_once_and_held() -> None:
    # GIVEN a message whose visibility lapsed: it comes back with a new receipt handle
    queue = ScriptedQueue([[message(1)], [message(1, receipt="r-1-again"), message(2)]])
    handled: list[str] = []

    # WHEN the run handles (and holds) what it is given
    with run_over(queue) as run:
        for batch in run.batches(lambda: 100):
            handled += [item["MessageId"] for item in batch]
            for item in batch:
                run.hold(item)

    # THEN it was handled once, counted once, and released with its latest receipt handle
    assert handled == ["id-1", "id-2"]
    assert run.received == 2
    assert sorted(queue.made_visible) == ["r-1-again", "r-2"]


def test_the_run_stops_when_no_more_is_wanted_and_asks_for_no_more_than_that() -> None:
    # GIVEN a queue with more than is wanted
    queue = ScriptedQueue([[message(n) for n in range(10)], [message(n) for n in range(10, 13)]])

    # WHEN a run wants 13 messages
    with run_over(queue) as run:
        for batch in run.batches(lambda: 13 - run.received):
            for item in batch:
                run.hold(item)

    # THEN it received 10, then the 3 still wanted, and stopped on max_messages
    assert queue.received_sizes == [10, 3]
    assert run.outcome.stopped == "max_messages"


def test_the_run_stops_before_the_deadline() -> None:
    # GIVEN a deadline 15 s away with a 15 s safety margin
    queue = ScriptedQueue([[message(1)]])

    # WHEN a run starts
    with run_over(queue, Deadline(lambda: 15_000, margin_ms=15_000)) as run:
        batches = list(run.batches(lambda: 100))

    # THEN it receives nothing and says why it stopped
    assert batches == []
    assert queue.received_sizes == []
    assert run.outcome.stopped == "deadline"


def test_a_delivery_error_ends_the_run_as_error_and_still_releases_what_it_held() -> None:
    # GIVEN a queue whose second receive fails
    queue = ScriptedQueue([[message(1)], QueueUnavailableError("dlq: unreachable")])

    # WHEN the run holds the first message
    with run_over(queue) as run:
        for batch in run.batches(lambda: 100):
            run.hold(batch[0])

    # THEN the error ends the run (it is not raised), the message is visible again, the rest counted
    assert (run.outcome.stopped, run.outcome.errors) == ("error", ["dlq: unreachable"])
    assert queue.made_visible == ["r-1"]
    assert run.outcome.remaining_estimate == 7


def test_a_release_that_fails_is_reported_and_left_to_the_visibility_timeout() -> None:
    # GIVEN a queue that cannot change visibility
    queue = ScriptedQueue([[message(1)]], fail_visibility=True)

    # WHEN the run holds its message
    with run_over(queue) as run:
        for batch in run.batches(lambda: 100):
            run.hold(batch[0])

    # THEN the run still ends normally and says the message comes back after its timeout
    assert run.outcome.stopped == "empty"
    assert run.outcome.errors == ["visible again after the run's timeout: dlq: unreachable"]


def test_a_failed_delete_is_counted_not_raised() -> None:
    # GIVEN a queue whose deletes fail
    queue = ScriptedQueue([[message(1), message(2)]], delete_error=DeliveryError("dlq: InternalError"))

    # WHEN the run deletes both messages
    with run_over(queue) as run:
        for batch in run.batches(lambda: 100):
            run.delete({"a": batch[0]["ReceiptHandle"], "b": batch[1]["ReceiptHandle"]})

    # THEN both are counted as not deleted (a later run handles them again), and the run goes on
    assert (run.outcome.delete_failed, run.outcome.errors, run.outcome.stopped) == (
        2,
        ["dlq: InternalError"],
        "empty",
    )


def test_any_other_error_propagates_after_the_release() -> None:
    # GIVEN a run that fails with a programming error while it holds a message
    queue = ScriptedQueue([[message(1)]])

    def hold_then_fail() -> None:
        with run_over(queue) as run:
            for batch in run.batches(lambda: 100):
                run.hold(batch[0])
                raise KeyError("bug")

    # WHEN the error leaves the run
    with pytest.raises(KeyError):
        hold_then_fail()

    # THEN the held message was still made visible again
    assert queue.made_visible == ["r-1"]


# ------------------------------------------------------------------ the summary


@dataclass(slots=True)
class CountingResult(RecoveryResult):
    handled: int = 0
    handled_ids: list[str] = field(default_factory=list)


def test_a_variant_s_summary_reports_its_counts_and_caps_its_lists() -> None:
    # GIVEN a run's result with a count of its own, a long list of ids and many errors
    result = CountingResult(
        stopped="deadline",
        remaining_estimate=3,
        handled=60,
        handled_ids=[f"id-{n}" for n in range(60)],
        errors=[f"e{n}" for n in range(12)],
    )

    # WHEN it is summarised
    summary = result.summary()

    # THEN its counts come first, then what every run reports, then its lists and errors, capped
    assert list(summary) == [
        "handled",
        "delete_failed",
        "remaining_estimate",
        "stopped",
        "handled_ids",
        "errors",
    ]
    assert (summary["handled"], summary["stopped"], summary["remaining_estimate"]) == (60, "deadline", 3)
    assert summary["handled_ids"] == [f"id-{n}" for n in range(MAX_LISTED_IDS)]
    assert summary["errors"] == [f"e{n}" for n in range(10)]


@pytest.mark.parametrize(
    ("result", "keys"),
    [
        (
            RedriveResult(),
            "moved failed skipped left_too_many_redrives delete_failed remaining_estimate stopped "
            "left_message_ids failed_message_ids errors",
        ),
        (
            ReplayResult(),
            "ranges_replayed records_replayed records_quarantined ranges_lost ranges_partly_lost "
            "ranges_lost_already_reported ranges_failed malformed delete_failed remaining_estimate stopped "
            "loss_reports errors",
        ),
        (
            AsyncReplayResult(),
            "reinvoked superseded malformed failed delete_failed remaining_estimate stopped functions errors",
        ),
    ],
)
def test_each_recovery_reports_its_fields_in_the_order_of_its_response(
    result: RecoveryResult, keys: str
) -> None:
    assert list(result.summary()) == keys.split()


def test_a_variant_s_counts_are_its_own_integer_fields() -> None:
    # GIVEN a DLQ run that moved two messages WHEN its counts are read
    # THEN they are the variant's own counters (what a dry run reports as zero), not its lists
    # or what every run reports
    assert RedriveResult(moved=2, delete_failed=1, left_message_ids=["m"]).counts() == {
        "moved": 2,
        "failed": 0,
        "skipped": 0,
        "left_too_many_redrives": 0,
    }

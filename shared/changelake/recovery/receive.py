"""What both recoveries share: one run over a queue that receives, holds and releases.

A run receives a batch at a time, each message hidden from other readers until just after the
run ends (``Deadline.hold_seconds``). A message it deletes is done; every other one it *holds*,
and holding ends with the run: the held messages are made visible again at once. A message
received a second time in one run (its visibility lapsed) is held, never handled twice. A
``DeliveryError`` ends the run as ``error``; the summary then says what is left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Generic, TypeVar

from changelake.budget import Deadline
from changelake.exceptions import DeliveryError
from changelake.integrations.base import Queue
from changelake.integrations.sqs import MAX_BATCH_ENTRIES

Message = dict[str, Any]
__all__ = ["DEFAULT_SAFETY_MARGIN_MS", "Deadline", "HoldingRun", "RateLimiter", "RecoveryResult"]

#: Stop this long before the Lambda deadline: one batch (receive, send, delete) fits well within.
DEFAULT_SAFETY_MARGIN_MS = 15_000
#: How many sampled messages a dry run returns (one receive).
SAMPLE_SIZE = 10
#: Message ids listed in a summary per category, so the response stays small.
MAX_LISTED_IDS = 50


class RateLimiter:
    """At most ``per_second`` items per second, on an injected clock and sleep (None: no limit)."""

    def __init__(
        self,
        per_second: float | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.monotonic = monotonic
        self.sleep = sleep
        self._start: float | None = None
        self._admitted = 0

    def delay(self) -> float:
        """Seconds to wait before the next item may go."""
        if self.per_second is None or self._start is None:
            return 0.0
        return max(0.0, self._start + self._admitted / self.per_second - self.monotonic())

    def batch_size(self, wanted: int) -> int:
        """``wanted`` capped so that one batch never exceeds one second's allowance (at least 1)."""
        if self.per_second is None:
            return wanted
        return max(1, min(wanted, int(self.per_second)))

    def wait(self) -> None:
        pause = self.delay()
        if pause > 0:
            self.sleep(pause)

    def admit(self, count: int) -> None:
        """Record that ``count`` items went."""
        if self._start is None:
            self._start = self.monotonic()
        self._admitted += count


#: Errors listed in a summary.
MAX_LISTED_ERRORS = 10


@dataclass(slots=True)
class RecoveryResult:
    """What every recovery run reports: why it stopped, what it could not delete, what is left.
    A variant adds its counts and its lists of ids as fields; ``summary`` reports them."""

    delete_failed: int = 0
    remaining_estimate: int | None = None
    stopped: str = "empty"
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The run's response: the variant's counts, then what every run reports, then the
        variant's lists (the first ``MAX_LISTED_IDS`` of each) and the first errors."""
        return {
            **self.counts(),
            "delete_failed": self.delete_failed,
            "remaining_estimate": self.remaining_estimate,
            "stopped": self.stopped,
            **{
                name: value[:MAX_LISTED_IDS] for name, value in self._own().items() if isinstance(value, list)
            },
            "errors": self.errors[:MAX_LISTED_ERRORS],
        }

    def counts(self) -> dict[str, int]:
        """The variant's own counts, by field name."""
        return {name: value for name, value in self._own().items() if isinstance(value, int)}

    def _own(self) -> dict[str, Any]:
        shared = {common.name for common in fields(RecoveryResult)}
        return {each.name: getattr(self, each.name) for each in fields(self) if each.name not in shared}


Result = TypeVar("Result", bound=RecoveryResult)


class HoldingRun(Generic[Result]):
    """One run over ``queue``; a context manager whose exit releases what the run holds.

    ``batches`` receives until the work wanted is done, the deadline is near or the queue is
    empty, and sets ``outcome.stopped`` to say which; a ``DeliveryError`` raised inside the
    ``with`` block ends the run as ``error``. On exit every held message is made visible again
    (if that fails, its visibility timeout does it) and ``outcome.remaining_estimate`` is read.
    """

    def __init__(
        self, queue: Queue, deadline: Deadline, outcome: Result, limiter: RateLimiter | None = None
    ) -> None:
        self.queue = queue
        self.deadline = deadline
        self.outcome = outcome
        self.limiter = limiter or RateLimiter(None)
        self._held: dict[str, str] = {}  # message id -> receipt handle, made visible again at the end
        self._seen: set[str] = set()

    def __enter__(self) -> HoldingRun[Result]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        stopped_by_error = isinstance(exc, DeliveryError)
        if stopped_by_error:
            self.outcome.stopped = "error"
            self.outcome.errors.append(str(exc))
        self._release()
        if exc is None or stopped_by_error:
            try:
                self.outcome.remaining_estimate = self.queue.approximate_visible()
            except DeliveryError as error:
                self.outcome.errors.append(str(error))
        return stopped_by_error

    def batches(self, wanted: Callable[[], int]) -> Iterator[list[Message]]:
        """The messages of each receive not handled before in this run, while ``wanted()`` is positive."""
        while True:
            remaining = wanted()
            if remaining <= 0:
                self.outcome.stopped = "max_messages"
                return
            if self.deadline.expired() or self.limiter.delay() >= self.deadline.seconds_left():
                self.outcome.stopped = "deadline"
                return
            self.limiter.wait()
            messages = self.queue.receive(
                self.limiter.batch_size(min(remaining, MAX_BATCH_ENTRIES)),
                visibility_timeout=self.deadline.hold_seconds(),
            )
            if not messages:
                self.outcome.stopped = "empty"
                return
            yield self._fresh(messages)

    @property
    def received(self) -> int:
        """Distinct messages received in this run so far."""
        return len(self._seen)

    def _fresh(self, messages: list[Message]) -> list[Message]:
        fresh = []
        for message in messages:
            message_id = str(message["MessageId"])
            if message_id in self._seen:
                self.hold(message)  # its visibility lapsed mid-run; it was handled already
                continue
            self._seen.add(message_id)
            fresh.append(message)
        return fresh

    def hold(self, message: Message) -> None:
        """Keep ``message`` in the queue: it becomes visible again when the run ends."""
        self._held[str(message["MessageId"])] = str(message["ReceiptHandle"])

    def delete(self, receipts: dict[str, str]) -> None:
        """Delete handled messages (``{entry_id: receipt_handle}``); one that stays is handled again
        by a later run (a duplicate, never a loss), and is counted in ``delete_failed``."""
        try:
            not_deleted = self.queue.delete_batch(receipts)
        except DeliveryError as exc:
            self.outcome.delete_failed += len(receipts)
            self.outcome.errors.append(str(exc))
            return
        self.outcome.delete_failed += len(not_deleted)
        self.outcome.errors.extend(str(error) for error in not_deleted.values())

    def _release(self) -> None:
        for receipt in self._held.values():
            try:
                self.queue.change_visibility(receipt, 0)
            except DeliveryError as exc:
                self.outcome.errors.append(f"visible again after the run's timeout: {exc}")

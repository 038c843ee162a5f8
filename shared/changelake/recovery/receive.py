"""What both recoveries share: the Lambda deadline of a run and the rate of its moves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: Stop this long before the Lambda deadline: one batch (receive, send, delete) fits well within.
DEFAULT_SAFETY_MARGIN_MS = 15_000
#: Longest visibility timeout SQS allows (12 hours).
MAX_VISIBILITY_SECONDS = 43_200
#: How many sampled messages a dry run returns (one receive).
SAMPLE_SIZE = 10
#: Message ids listed in a summary per category, so the response stays small.
MAX_LISTED_IDS = 50


class _RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a run must stop: ``margin_ms`` before the invocation's remaining time runs out."""

    remaining_ms: Callable[[], int]
    margin_ms: int = DEFAULT_SAFETY_MARGIN_MS

    @classmethod
    def of_context(cls, context: _RemainingTime, margin_ms: int = DEFAULT_SAFETY_MARGIN_MS) -> Deadline:
        return cls(context.get_remaining_time_in_millis, margin_ms)

    @classmethod
    def after_seconds(
        cls, seconds: float, *, monotonic: Callable[[], float] = time.monotonic, margin_ms: int = 0
    ) -> Deadline:
        """A deadline ``seconds`` from now (for runs outside Lambda)."""
        end = monotonic() + seconds
        return cls(lambda: int((end - monotonic()) * 1000), margin_ms)

    def seconds_left(self) -> float:
        """Seconds of work left before the run must stop (never negative)."""
        return max(0.0, (self.remaining_ms() - self.margin_ms) / 1000)

    def expired(self) -> bool:
        return self.remaining_ms() <= self.margin_ms

    def hold_seconds(self) -> int:
        """A visibility timeout that hides a received message until just after this run ends."""
        return int(min(MAX_VISIBILITY_SECONDS, self.remaining_ms() / 1000 + 30))


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

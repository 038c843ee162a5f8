"""A run's time budget: one value, built once per invocation from Lambda's context, asked the same
way by every batch run (compaction, the snapshot, the recoveries)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

#: Longest visibility timeout SQS allows (12 hours).
MAX_VISIBILITY_SECONDS = 43_200


class RemainingTime(Protocol):
    """Lambda's context, as far as the budget reads it."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(slots=True)
class Deadline:
    """When a run must stop: ``margin_ms`` before the invocation's remaining time runs out (the
    reserve kept for what follows the work: a hand-off, the summary, held messages released)."""

    remaining_ms: Callable[[], int]
    margin_ms: int = 0
    #: Builds ``may_build`` allowed so far (the first is always allowed).
    builds: int = field(default=0, compare=False)

    @classmethod
    def of_context(cls, context: RemainingTime, margin_ms: int) -> Deadline:
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

    def may_build(self) -> bool:
        """Whether there is time for another build: some left above the margin, or nothing built
        yet by this invocation (so every invocation makes progress)."""
        if self.builds and self.expired():
            return False
        self.builds += 1
        return True

    def hold_seconds(self) -> int:
        """A visibility timeout that hides a received message until just after this run ends."""
        return int(min(MAX_VISIBILITY_SECONDS, self.remaining_ms() / 1000 + 30))

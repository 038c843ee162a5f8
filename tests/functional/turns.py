"""Runs that take turns at S3 requests, so a test can drive every interleaving of a protocol.

Each run uses its own ``TurnTakingS3`` client (any thread of the run, its background threads
included, counts as the run). Before each *step* (a request the other run can observe) the client
waits for its run's turn; ``Turns`` hands the turns out in a fixed order, so a schedule such as
"A makes 3 steps, then B 2, then A to its end, then B to its end" is replayed exactly. Requests
that are not steps (reading immutable inputs, uploading invisible multipart parts) pass freely.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.functional.fakes import WrappingClient

S3_REQUESTS = frozenset(
    {
        "list_objects_v2",
        "get_object",
        "head_object",
        "put_object",
        "create_multipart_upload",
        "upload_part",
        "complete_multipart_upload",
        "abort_multipart_upload",
        "delete_object",
    }
)
#: Seconds a run may wait for its turn before the schedule is declared stuck (a hang guard, not a
#: timing assertion: a correct schedule never waits for long).
STUCK_SECONDS = 120.0

StepFilter = Callable[[str, dict[str, Any]], bool]


@dataclass
class Turn:
    run: str
    steps: int | None  # None: until the run ends


@dataclass
class Turns:
    """The schedule: ``turns`` in order; ``steps`` records (run, operation) of every step made,
    ``switches`` (run, operation it was about to make) each time a run's turn ended before its
    run did; ``on_switch`` is called at each switch, while no run is between two steps."""

    turns: list[Turn]
    on_switch: Callable[[], None] = lambda: None
    steps: list[tuple[str, str]] = field(default_factory=list)
    switches: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue = deque(self.turns)
        self._finished: set[str] = set()
        self._condition = threading.Condition()

    def step(self, run: str, operation: str) -> None:
        """Wait until ``run`` may make its next step, and count it."""
        with self._condition:
            while True:
                while self._queue and self._queue[0].run in self._finished:
                    self._queue.popleft()
                turn = self._queue[0] if self._queue else None
                if turn is None or (turn.run == run and (turn.steps is None or turn.steps > 0)):
                    if turn is not None and turn.steps is not None:
                        turn.steps -= 1
                    self.steps.append((run, operation))
                    return
                if turn.run == run:  # this run's turn is spent: hand over
                    self._queue.popleft()
                    self.switches.append((run, operation))
                    self.on_switch()
                    self._condition.notify_all()
                    continue
                if not self._condition.wait(timeout=STUCK_SECONDS):
                    raise RuntimeError(f"schedule stuck: {run} waiting before {operation}")

    def finished(self, run: str) -> None:
        with self._condition:
            self._finished.add(run)
            self._condition.notify_all()

    def paused(self, run: str) -> list[str]:
        """The operations before which ``run`` handed over its turn."""
        return [operation for name, operation in self.switches if name == run]

    def made(self, run: str) -> list[str]:
        """The operations of ``run``'s steps, in order."""
        return [operation for name, operation in self.steps if name == run]


class TurnTakingS3(WrappingClient):
    """An S3 client of one run: each step waits for the run's turn in ``turns``."""

    def __init__(self, real: Any, run: str, turns: Turns, is_step: StepFilter) -> None:
        super().__init__(real)
        self.run = run
        self.turns = turns
        self.is_step = is_step

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name not in S3_REQUESTS:
            return method

        def call(**kwargs: Any) -> Any:
            if self.is_step(name, kwargs):
                self.turns.step(self.run, name)
            return method(**kwargs)

        return call


@dataclass
class RunThread:
    """``work`` on its own thread; ``turns`` learns when it ends. ``join`` re-raises its error."""

    name: str
    turns: Turns
    work: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"run-{self.name}", daemon=True)

    def start(self) -> RunThread:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as exc:  # re-raised by join, in the test's thread
            self.error = exc
        finally:
            self.turns.finished(self.name)

    def join(self) -> Any:
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.result

"""Past one invocation: which days and hours go to the fan-out state machine, in how many pieces.

A snapshot day (its base and its changes) or a compacted hour (its raw/ objects) whose input is at
least ``min_bytes`` is not built by the nightly run: it is handed to the stack's state machine
(``StateMachine.start``), which asks the function for a plan, runs the pieces in parallel
(a Distributed Map) and then the commit (``changelake.pieces``). Below it, one invocation builds it
as it always did. The count of pieces is what keeps each piece well inside one invocation:
``input bytes / piece_bytes``, rounded up; ``pieces`` fixes it instead (local runs, tests).

The thresholds are per function (each settings model carries its own defaults, with the measurement
that chose them), since a snapshot day and a compacted hour go at different speeds.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime

from changelake.pieces import MAX_PIECES

#: Execution names: 1 to 80 characters of letters, digits, '-' and '_'.
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True, slots=True)
class FanOut:
    """When a day or an hour is built in pieces. ``state_machine_arn`` None: never (every day and
    hour in one invocation, as in a stack without the state machine)."""

    state_machine_arn: str | None
    min_bytes: int
    piece_bytes: int
    pieces: int | None = None

    def __post_init__(self) -> None:
        if self.min_bytes < 0 or self.piece_bytes < 1:
            raise ValueError("min_bytes >= 0 and piece_bytes >= 1")
        if self.pieces is not None and not 1 <= self.pieces <= MAX_PIECES:
            raise ValueError(f"pieces: 1 to {MAX_PIECES}")

    def pieces_for(self, input_bytes: int) -> int | None:
        """How many pieces an input of ``input_bytes`` is built in; None: one invocation builds it."""
        if input_bytes < self.min_bytes:
            return None
        if self.pieces is not None:
            return self.pieces
        return min(MAX_PIECES, max(1, math.ceil(input_bytes / self.piece_bytes)))

    def hands_off(self, input_bytes: int) -> bool:
        """Whether the nightly run hands this input to the state machine rather than building it."""
        return self.state_machine_arn is not None and self.pieces_for(input_bytes) is not None


def execution_name(layer: str, table: str, folder: str, now: datetime) -> str:
    """The execution that builds ``folder`` (``dt=YYYY-MM-DD`` or ``dt=.../hour=HH``) of ``table``,
    started by the run of ``now``: the same name for every try of that run (so a retried hand-off
    starts nothing twice), another for the next night's run. Table names may hold characters an
    execution name may not, and may be long: a digest of the name keeps them apart."""
    digest = hashlib.sha256(table.encode()).hexdigest()[:12]
    readable = _NAME_UNSAFE.sub("_", table)[:16]
    place = _NAME_UNSAFE.sub("", folder.replace("/", "-").replace("=", ""))[:20]
    # At most 10 + 16 + 12 + 20 + 13 characters and 4 separators: 75.
    return f"{layer[:10]}-{readable}-{digest}-{place}-{now:%Y%m%dT%H%M}"

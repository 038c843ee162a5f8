"""Slices: an hour of compacted/ cut into consecutive event-time ranges, built in parallel.

Slice K of N of the hour starting at H holds the changes whose ``event_time`` lies in
``[H + K * 3600000 // N ms, H + (K + 1) * 3600000 // N ms)``: integer milliseconds, boundaries
floor-divided, so the N ranges cover the hour exactly, without gaps or overlaps. Copies of one
``event_id`` have the same ``event_time`` (both come from one stream record), so they meet in one
slice and are deduplicated there; and since the order of compacted/ starts with ``event_time``, the
slices in order, each sorted, give the hour's order: concatenating the parts of an hour built in N
slices, in name order (the names carry the slice, ``changelake.pieces.Piece.name``), gives the very
lines one invocation writes.

Pure: no I/O, and nothing but the standard library at import (compaction's checking process
imports it, and must stay small).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from changelake.pieces import Piece

HOUR_MS = 3_600_000


def _clock_text(milliseconds: int) -> str:
    """``MM:SS.mmm`` of a point ``milliseconds`` into an hour, as ``event_time`` spells it."""
    minutes, rest = divmod(milliseconds, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


@dataclass(frozen=True, slots=True)
class Slice:
    """Slice ``index`` of ``count`` of an hour (``Slice.of(piece)``; 0 <= index < count)."""

    index: int
    count: int
    #: The bounds as ``event_time`` spells them from the minutes on (the last slice has no end).
    _first: str = field(init=False, repr=False, compare=False)
    _last: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"slice {self.index} of {self.count} does not exist")
        object.__setattr__(self, "_first", _clock_text(self.start_ms))
        object.__setattr__(self, "_last", None if self.end_ms == HOUR_MS else _clock_text(self.end_ms))

    @classmethod
    def of(cls, piece: Piece) -> Slice:
        return cls(piece.index, piece.count)

    @property
    def piece(self) -> Piece:
        from changelake.pieces import Piece  # here: the module imports boto3 (see the module doc)

        return Piece(self.index, self.count)

    @property
    def start_ms(self) -> int:
        """Milliseconds after the hour's start where the slice begins (included)."""
        return self.index * HOUR_MS // self.count

    @property
    def end_ms(self) -> int:
        """Milliseconds after the hour's start where the slice ends (excluded)."""
        return (self.index + 1) * HOUR_MS // self.count

    def holds(self, event_time: str) -> bool:
        """Whether a change of the hour with this ``event_time`` (``YYYY-MM-DDTHH:MM:SS.mmmZ``, as
        ``parse_change_line`` checks it) belongs to the slice. The minutes, seconds and milliseconds
        compare as text as they do as numbers (fixed width), so no number is built per line."""
        clock = event_time[14:23]
        return self._first <= clock and (self._last is None or clock < self._last)

    def meets(self, first_clock: str, last_clock: str) -> bool:
        """Whether changes timed from ``first_clock`` to ``last_clock`` (``MM:SS.mmm``, both included)
        may hold one of the slice's: a raw/ object whose name gives these times is read by exactly
        the slices it meets (``changelake.formats.layout.raw_file_times``)."""
        return last_clock >= self._first and (self._last is None or first_clock < self._last)


def named_clocks(hour_text: str, times: tuple[str, str] | None) -> tuple[str, str] | None:
    """The ``MM:SS.mmm`` of the compact times a raw/ object's name gives (``raw_file_times``), when
    both lie in the hour ``hour_text`` (``YYYYMMDDTHH``); None when there are none, or they name
    another hour (then the object is read whole, and its lines are checked as any object's)."""
    if times is None or not all(time.startswith(hour_text) for time in times):
        return None
    first, last = (f"{time[11:13]}:{time[13:15]}.{time[15:18]}" for time in times)
    return first, last

"""A table's changes per hour over the last 48 hours, and the sparkline a terminal draws of them.

Pure: the counts come from the day reports ``status`` reads anyway (``Lake.day_report``: each
compacted hour's manifest, the other hours' raw/ lines within the read budget), so the chart costs
no S3 request of its own. The hours are event-time hours (raw/ partitions are by event time) and
the counts are raw/ lines, as the "changes stored" figures: a change delivered twice counts twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from changelake_cli.lake import DayReport

#: Hours the chart covers, the current one last.
CHART_HOURS = 48
#: The eighth blocks, lowest first: an hour without changes is the lowest, any change at least the next.
BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class HourlyChanges:
    """``counts[i]``: changes in the hour starting ``first_hour + i`` hours (UTC), oldest first."""

    first_hour: datetime
    counts: list[int]
    #: False when a count is a floor: an hour not fully read within the budget, or a day not read.
    complete: bool
    total: int
    peak: int
    #: The start of the (first) hour with the most changes; None when no hour has any.
    peak_hour: datetime | None


def hourly_changes(reports: Iterable[DayReport], now: datetime, hours: int = CHART_HOURS) -> HourlyChanges:
    """The ``hours`` hours up to and including the one ``now`` is in, from one table's day reports."""
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first = last - timedelta(hours=hours - 1)
    by_day = {report.dt: report for report in reports}
    counts: list[int] = []
    complete = True
    for index in range(hours):
        start = first + timedelta(hours=index)
        report = by_day.get(start.date())
        hour = f"{start.hour:02d}"
        if report is None or hour in report.hours_counted_in_part:
            complete = False
        counts.append(report.changes_by_hour.get(hour, 0) if report is not None else 0)
    peak = max(counts, default=0)
    peak_hour = first + timedelta(hours=counts.index(peak)) if peak > 0 else None
    return HourlyChanges(first, counts, complete, sum(counts), peak, peak_hour)


def sparkline(counts: Sequence[int]) -> str:
    """One block per count: ▁ for none, ▂ to █ in proportion to the largest (so one change still
    shows above an hour without any)."""
    peak = max(counts, default=0)
    levels = len(BLOCKS) - 1  # ceil(count * levels / peak): 1 to 7 for any count from 1 to the peak
    return "".join(BLOCKS[0] if count <= 0 else BLOCKS[-(-count * levels // peak)] for count in counts)

"""Time, always UTC, injected wherever behaviour depends on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default ``Clock``)."""
    return datetime.now(UTC)

"""CompactionFunction's events, as the service plans them (compaction.events, compaction.service)."""

from __future__ import annotations

from datetime import date

import pytest

from changelake.compaction.compactor import Compactor
from changelake.compaction.events import HandoffEvent, ManualEvent, is_scheduled_event, scheduled_days
from changelake.compaction.service import CompactionService
from changelake.exceptions import InvalidEventError
from changelake.integrations.s3 import S3Store


def test_scheduled_days_are_yesterday_and_the_lookback_window() -> None:
    assert scheduled_days(date(2026, 3, 1), 2) == [date(2026, 2, 26), date(2026, 2, 27), date(2026, 2, 28)]
    assert scheduled_days(date(2026, 1, 1), 0) == [date(2025, 12, 31)]


def test_scheduled_event_is_recognised_by_its_detail_type() -> None:
    assert is_scheduled_event({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    assert not is_scheduled_event({"table": "orders", "dt": "2026-11-22"})
    assert not is_scheduled_event([])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"table": "a/b", "dt": "2026-11-22"}, "table"),
        ({"table": "..", "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-13-01"}, "dt"),
        ({"table": "orders", "dt": 20261122}, "dt"),
        ({"table": "orders", "dt": "2026-11-22", "hour": "7"}, "hour"),
        ({"table": "orders", "dt": "2026-11-22", "extra": 1}, "extra"),
        ("orders", "event"),
        ({"handoff": "other", "partitions": ["orders/dt=2026-11-22/hour=01"]}, "handoff"),
        ({"handoff": "changelake.compaction", "partitions": []}, "partitions"),
    ],
)
def test_bad_events_name_the_field(event: object, field: str) -> None:
    service = CompactionService(Compactor(S3Store("unused", client=object())))
    with pytest.raises(InvalidEventError) as raised:
        service.plan(event)
    assert raised.value.field.split(".")[0] == field


def test_good_events_parse() -> None:
    assert ManualEvent.model_validate({"table": "orders", "dt": "2026-11-22"}).hour is None
    service = CompactionService(Compactor(S3Store("unused", client=object())))
    trigger, partitions = service.plan(
        HandoffEvent(
            handoff="changelake.compaction", partitions=["orders/dt=2026-11-22/hour=05"]
        ).model_dump()
    )
    assert trigger == "handoff"
    assert [p.path for p in partitions] == ["orders/dt=2026-11-22/hour=05"]
    _, manual = service.plan({"table": "orders", "dt": "2026-11-22", "hour": "23"})
    assert [p.path for p in manual] == ["orders/dt=2026-11-22/hour=23"]

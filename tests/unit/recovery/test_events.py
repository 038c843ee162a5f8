"""DlqRedriveFunction's event (recovery.events)."""

from __future__ import annotations

from typing import Any

import pytest

from changelake.exceptions import (
    InvalidEventError,
)
from changelake.recovery.events import parse_request

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


# ------------------------------------------------------------------ the event


def test_an_empty_event_gets_the_documented_defaults() -> None:
    # GIVEN / WHEN an empty event (and no event at all)
    request, missing = parse_request({}), parse_request(None)

    # THEN max_messages is 1000, nothing is a dry run, stream failures are replayed
    assert request == missing
    assert (request.max_messages, request.dry_run, request.replay_stream_failures) == (1000, False, True)
    assert (request.rate_per_second, request.attribute_filter) == (None, None)


def test_every_optional_field_is_read() -> None:
    # GIVEN / WHEN an event with every field
    request = parse_request(
        {
            "max_messages": 5,
            "dry_run": True,
            "rate_per_second": 2,
            "attribute_filter": {"origin": "orders"},
            "replay_stream_failures": False,
        }
    )

    # THEN each is kept
    assert request.max_messages == 5
    assert request.dry_run is True
    assert request.rate_per_second == 2.0
    assert request.attribute_filter == {"origin": "orders"}
    assert request.replay_stream_failures is False


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"max_messages": -3}, "max_messages"),
        ({"max_messages": 2.5}, "max_messages"),
        ({"max_messages": True}, "max_messages"),
        ({"dry_run": 1}, "dry_run"),
        ({"dry_run": "false"}, "dry_run"),
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"attribute_filter": {}}, "attribute_filter"),
        ({"attribute_filter": "origin=orders"}, "attribute_filter"),
        ({"replay_stream_failures": None}, "replay_stream_failures"),
        ({"maxMessages": 10}, "maxMessages"),
        ("max_messages=10", "event"),
    ],
)
def test_a_malformed_event_names_its_field(event: Any, field: str) -> None:
    # GIVEN / WHEN a malformed event is parsed
    with pytest.raises(InvalidEventError) as raised:
        parse_request(event)

    # THEN the error names the field
    assert raised.value.field == field

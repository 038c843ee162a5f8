"""The DLQ redrive's message handling: attributes, redrive counter, filter (recovery.dlq)."""

from __future__ import annotations

from typing import Any

import pytest

from changelake.recovery.dlq import REDRIVE_COUNT_ATTRIBUTE, matches, redrive_count, redriven, send_attributes

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


# ------------------------------------------------------------------ attributes


def test_received_attributes_become_send_attributes() -> None:
    # GIVEN attributes as ReceiveMessage returns them (list values empty, one binary)
    received = {
        "a": {"StringValue": "x", "DataType": "String", "StringListValues": [], "BinaryListValues": []},
        "b": {"BinaryValue": b"\x01", "DataType": "Binary"},
        "n": {"StringValue": "7", "DataType": "Number.int"},
    }

    # WHEN / THEN only what SendMessage accepts is kept, values and custom types unchanged
    assert send_attributes(received) == {
        "a": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x01"},
        "n": {"DataType": "Number.int", "StringValue": "7"},
    }


@pytest.mark.parametrize(
    ("attributes", "count"),
    [
        ({}, 0),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "4"}}, 4),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "-1"}}, 0),
        ({REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Binary", "BinaryValue": b"4"}}, 0),
    ],
)
def test_the_redrive_count_is_read_from_its_attribute(attributes: dict[str, Any], count: int) -> None:
    assert redrive_count(attributes) == count


def test_a_redriven_message_keeps_body_and_attributes_and_counts_one_more() -> None:
    # GIVEN a received message redriven twice before
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": '{"v":1}',
        "MessageAttributes": {
            "a": {"StringValue": "x", "DataType": "String"},
            REDRIVE_COUNT_ATTRIBUTE: {"StringValue": "2", "DataType": "Number"},
        },
    }

    # WHEN it is prepared for sending
    outbound = redriven(message, "e0")

    # THEN the body is the same and the counter is 3
    assert (outbound.entry_id, outbound.body) == ("e0", '{"v":1}')
    assert outbound.attributes == {
        "a": {"DataType": "String", "StringValue": "x"},
        REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "3"},
    }


def test_the_filter_matches_exact_string_values_only() -> None:
    attributes = {"origin": {"StringValue": "orders", "DataType": "String"}}
    assert matches(attributes, None)
    assert matches(attributes, {"origin": "orders"})
    assert not matches(attributes, {"origin": "Orders"})
    assert not matches(attributes, {"origin": "orders", "kind": "batch"})
    assert not matches({}, {"origin": "orders"})

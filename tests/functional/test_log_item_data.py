"""Logs: no item image or key value at INFO or above unless LOG_ITEM_DATA turns them on for debugging."""

from __future__ import annotations

import logging

import pytest

from changelake_testing.stream_records import stream_record
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import sqs_event

KEY_VALUE = "customer#k3y-v4lue-5ecret"
IMAGE_VALUE = "im4ge-v4lue-5ecret"


def batch() -> list[dict[str, object]]:
    """A good change and a poison one (unknown type tag), both carrying the customer's values."""
    keys = {"pk": {"S": KEY_VALUE}, "sk": {"S": "order#1"}}
    good = stream_record(
        table="orders",
        event_name="INSERT",
        sequence_number=10**20,
        created=1_795_780_800.5,
        keys=keys,
        new_image={**keys, "note": {"S": IMAGE_VALUE}},
    )
    poison = stream_record(
        table="orders",
        event_name="MODIFY",
        sequence_number=10**20 + 1,
        created=1_795_780_801.5,
        keys=keys,
        new_image={**keys, "note": {"XX": IMAGE_VALUE}},
    )
    return [good, poison]


def run_pipeline(
    stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> str:
    """The batch through the consumer and the aggregator handlers, then a compaction of its hour;
    returns every record the functions logged at INFO or above, message and extra fields."""
    caplog.set_level(logging.INFO, logger="changelake")
    consumer = load_handler("stream_consumer", stack.environment)
    assert consumer.lambda_handler({"Records": batch()}, context) == {"batchItemFailures": []}
    aggregator = load_handler("aggregator", stack.environment)
    assert aggregator.lambda_handler(sqs_event(stack.drain()), context) == {"batchItemFailures": []}
    compaction = load_handler("compaction", stack.environment)
    compaction.lambda_handler({"table": "orders", "dt": "2026-11-27", "hour": "12"}, context)
    return "\n".join(
        f"{record.getMessage()} {record.__dict__!r}"
        for record in caplog.records
        if record.name == "changelake" and record.levelno >= logging.INFO
    )


@pytest.fixture
def verbose_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """INFO logs, and Powertools told to log every event (as an operator debugging might)."""
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")


@pytest.mark.usefixtures("verbose_logs")
def test_no_key_or_image_value_reaches_the_logs_by_default(
    stack: Stack,
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN INFO logging with Powertools' event logging on, and LOG_ITEM_DATA unset
    # WHEN a change and a poison record flow through consumer, aggregator and compaction
    logs = run_pipeline(stack, load_handler, lambda_context, caplog)

    # THEN the functions logged (so the check can see their lines) but never a key or image value
    assert "batch forwarded" in logs
    assert KEY_VALUE not in logs
    assert IMAGE_VALUE not in logs


@pytest.mark.usefixtures("verbose_logs")
def test_log_item_data_turns_them_on_for_debugging(
    stack: Stack,
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the debugging switch
    monkeypatch.setenv("LOG_ITEM_DATA", "true")

    # WHEN the same batch flows through
    logs = run_pipeline(stack, load_handler, lambda_context, caplog)

    # THEN the events, with their values, are in the logs
    assert KEY_VALUE in logs
    assert IMAGE_VALUE in logs

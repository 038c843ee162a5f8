"""make run counts quarantined records, not quarantine lines: a redelivered poison record is one record."""

from __future__ import annotations

from typing import Any

from changelake_local.lake import LakeWatcher, StreamLedger
from changelake_testing.stream_records import stream_record
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack


def poison(sequence: int) -> dict[str, Any]:
    """A stream record with an unknown type tag in its new image."""
    keys = {"pk": {"S": f"customer#{sequence}"}, "sk": {"S": "order#1"}}
    return stream_record(
        table="orders",
        event_name="INSERT",
        sequence_number=sequence,
        created=1_795_780_800.0 + sequence % 1000,
        keys=keys,
        new_image={**keys, "bad": {"XX": "1"}},
    )


def test_a_redelivered_poison_record_is_counted_once(
    stack: Stack, endpoint: str, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two poison records, and the second delivered again alone (Lambda retrying from it)
    first, second = poison(10**20), poison(10**20 + 1)
    consumer = load_handler("stream_consumer", stack.environment)
    consumer.lambda_handler({"Records": [first, second]}, lambda_context)
    consumer.lambda_handler({"Records": [second]}, lambda_context)

    # WHEN make run's lake watcher reads quarantine/
    state = LakeWatcher(endpoint, stack.bucket, StreamLedger()).scan()

    # THEN the second record was written twice (two objects) but both count as two records
    assert len(stack.keys("quarantine/")) == 2
    assert len(state.quarantined) == 2
    assert state.quarantined_ids == {first["eventID"], second["eventID"]}

"""events/*.json are exactly what changelake_testing.sample_events builds, and agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from changelake.formats.change_line import to_change_line
from changelake.formats.envelope import decode_body
from changelake_testing.sample_events import EVENTS_DIR, all_events, render

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["stream_batch.json", "sqs_batch.json"])
def test_event_files_equal_generated(name: str) -> None:
    # GIVEN the committed sample event and the generator
    path = ROOT / "events" / name
    assert EVENTS_DIR == ROOT / "events"
    # WHEN compared THEN the file is exactly the rendered generated event (regenerate with
    # `python -m changelake_testing.sample_events` when the format changes)
    generated = all_events()[name]
    assert json.loads(path.read_text()) == generated
    assert path.read_text() == render(generated)


def test_sqs_sample_carries_exactly_the_stream_sample() -> None:
    # GIVEN both committed samples
    stream = json.loads((ROOT / "events" / "stream_batch.json").read_text())
    sqs = json.loads((ROOT / "events" / "sqs_batch.json").read_text())
    # WHEN the SQS bodies are decoded
    lines: list[bytes] = []
    for message in sqs["Records"]:
        decoded = decode_body(message["body"])
        assert isinstance(decoded, list)
        lines.extend(decoded)
    # THEN they are exactly the consumer's change lines for the stream records, in order
    assert lines == [to_change_line(record).line for record in stream["Records"]]
    assert len(lines) == len(stream["Records"]) > 0


def test_stream_sample_covers_what_the_issue_asks() -> None:
    # GIVEN the stream sample WHEN inspected THEN it has every event name, a TTL delete, two tables
    stream = json.loads((ROOT / "events" / "stream_batch.json").read_text())
    records = stream["Records"]
    assert {r["eventName"] for r in records} == {"INSERT", "MODIFY", "REMOVE"}
    assert any(r.get("userIdentity") for r in records)
    assert len({to_change_line(r).table for r in records}) == 2
    # AND every DynamoDB type appears
    tags: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}:
                    tags.add(key)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk([r["dynamodb"].get("NewImage") for r in records])
    assert tags == {"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"}

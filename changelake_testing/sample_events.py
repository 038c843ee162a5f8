"""The sample events in ``events/``, built from one source so they never drift apart.

``python -m changelake_testing.sample_events`` rewrites them; a test checks the files equal what
this module builds (so the SQS sample is exactly what the consumer sends for the stream sample).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from changelake.formats.change_line import to_change_line
from changelake.formats.envelope import MessagePacker, PackedMessage
from changelake.formats.lambda_events import sqs_event
from changelake_testing.stream_records import REGION, stream_arn, stream_record

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SAMPLE_TABLES = ("changelake-changes", "inventory")
_CREATED = 1_795_867_200.125  # 2026-11-28T12:00:00.125Z


def _item(pk: str, sk: str) -> dict[str, Any]:
    return {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "price": {"N": "12345678901234567890123456789012345678"},
        "ratio": {"N": "0.1234567890123456789012345678901234567"},
        "negative": {"N": "-42.5"},
        "huge": {"N": "9.9999999999999999999999999999999999999E+125"},
        "name": {"S": "Crème brûlée \u00e9\u00e8 \u2603"},
        "photo": {"B": "aGVsbG8gd29ybGQ="},
        "in_stock": {"BOOL": True},
        "discontinued": {"NULL": True},
        "colors": {"SS": ["red", "green"]},
        "sizes": {"NS": ["1", "2.5", "10000000000000000000000000000000000001"]},
        "thumbnails": {"BS": ["AAEC", "AwQF"]},
        "dimensions": {"M": {"w": {"N": "10"}, "h": {"N": "20.25"}, "unit": {"S": "cm"}}},
        "history": {"L": [{"S": "created"}, {"N": "1"}, {"M": {"by": {"S": "admin"}}}, {"L": []}]},
    }


def _sequence_number(number: int) -> int:
    """The ``number``-th change's: 24 digits, ``111<number>00000000012345678900<number>``."""
    return 111_000_000_000_012_345_678_900 + number * (10**20 + 1)


def stream_event() -> dict[str, Any]:
    """A DynamoDB stream batch: INSERT, MODIFY, REMOVE, a TTL delete, two tables, every type."""
    orders, inventory = SAMPLE_TABLES
    keys_a = {"pk": {"S": "customer#1"}, "sk": {"S": "order#1"}}
    keys_b = {"pk": {"S": "sku#9"}, "sk": {"S": "warehouse#2"}}
    insert = _item("customer#1", "order#1")
    modified = dict(insert, in_stock={"BOOL": False}, price={"N": "0.5"})
    session = {"pk": {"S": "session#7"}, "sk": {"S": "session#7"}, "expires_at": {"N": "1795863600"}}
    # Each change: table, event name, seconds after _CREATED, keys, new image, old image, TTL delete;
    # the n-th has the n-th sequence number and the MD5 of n as its event ID.
    changes = [
        (orders, "INSERT", 0, keys_a, insert, None, False),
        (orders, "MODIFY", 1.5, keys_a, modified, insert, False),
        (inventory, "INSERT", 2, keys_b, _item("sku#9", "warehouse#2"), None, False),
        (orders, "REMOVE", 3.25, keys_a, None, modified, False),
        (orders, "REMOVE", 3600, {"pk": session["pk"], "sk": session["sk"]}, None, session, True),
    ]
    records = [
        stream_record(
            table=table,
            event_name=name,
            sequence_number=_sequence_number(number),
            created=_CREATED + seconds,
            keys=keys,
            new_image=new,
            old_image=old,
            ttl_delete=ttl,
            event_id=hashlib.md5(str(number).encode(), usedforsecurity=False).hexdigest(),
        )
        for number, (table, name, seconds, keys, new, old, ttl) in enumerate(changes, start=1)
    ]
    return {"Records": records}


def sqs_event_of(stream: dict[str, Any]) -> dict[str, Any]:
    """The SQS event the aggregator receives for ``stream``, with the consumer's exact bodies."""
    lines = [to_change_line(record).line for record in stream["Records"]]
    bodies = [
        item.body for item in MessagePacker(262_144).pack(enumerate(lines)) if isinstance(item, PackedMessage)
    ]
    received = [
        {
            "MessageId": f"059f36b4-87a3-44ab-83d2-66197{index:07d}",
            "ReceiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{index}",
            "Body": body,
            "Attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1795867210000",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1795867210001",
            },
        }
        for index, body in enumerate(bodies)
    ]
    return sqs_event(received, f"arn:aws:sqs:{REGION}:123456789012:changelake-ChangeQueue", REGION)


def all_events() -> dict[str, Any]:
    """Every generated sample, by file name."""
    stream = stream_event()
    return {"stream_batch.json": stream, "sqs_batch.json": sqs_event_of(stream)}


def render(event: Any) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    for name, event in all_events().items():
        (EVENTS_DIR / name).write_text(render(event))
        print(f"wrote events/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

__all__ = ["SAMPLE_TABLES", "all_events", "render", "stream_arn", "stream_event"]

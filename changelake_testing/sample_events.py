"""The sample events in ``events/``, built from one source so they never drift apart.

``python -m changelake_testing.sample_events`` rewrites them; a test checks the files equal what
this module builds (so the SQS sample is exactly what the consumer sends for the stream sample).
"""

from __future__ import annotations

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


def stream_event() -> dict[str, Any]:
    """A DynamoDB stream batch: INSERT, MODIFY, REMOVE, a TTL delete, two tables, every type."""
    orders, inventory = SAMPLE_TABLES
    keys_a = {"pk": {"S": "customer#1"}, "sk": {"S": "order#1"}}
    keys_b = {"pk": {"S": "sku#9"}, "sk": {"S": "warehouse#2"}}
    insert = _item("customer#1", "order#1")
    modified = dict(insert, in_stock={"BOOL": False}, price={"N": "0.5"})
    session = {"pk": {"S": "session#7"}, "sk": {"S": "session#7"}, "expires_at": {"N": "1795863600"}}
    records = [
        stream_record(
            table=orders,
            event_name="INSERT",
            sequence_number=111100000000012345678901,
            created=_CREATED,
            keys=keys_a,
            new_image=insert,
            event_id="c4ca4238a0b923820dcc509a6f75849b",
        ),
        stream_record(
            table=orders,
            event_name="MODIFY",
            sequence_number=111200000000012345678902,
            created=_CREATED + 1.5,
            keys=keys_a,
            new_image=modified,
            old_image=insert,
            event_id="c81e728d9d4c2f636f067f89cc14862c",
        ),
        stream_record(
            table=inventory,
            event_name="INSERT",
            sequence_number=111300000000012345678903,
            created=_CREATED + 2,
            keys=keys_b,
            new_image=_item("sku#9", "warehouse#2"),
            event_id="eccbc87e4b5ce2fe28308fd9f2a7baf3",
        ),
        stream_record(
            table=orders,
            event_name="REMOVE",
            sequence_number=111400000000012345678904,
            created=_CREATED + 3.25,
            keys=keys_a,
            old_image=modified,
            event_id="a87ff679a2f3e71d9181a67b7542122c",
        ),
        stream_record(
            table=orders,
            event_name="REMOVE",
            sequence_number=111500000000012345678905,
            created=_CREATED + 3600,
            keys={"pk": session["pk"], "sk": session["sk"]},
            old_image=session,
            ttl_delete=True,
            event_id="e4da3b7fbbce2345d7772b0674a318d5",
        ),
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

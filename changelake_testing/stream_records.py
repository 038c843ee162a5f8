"""Real-format DynamoDB stream records and realistic items, for tests, the benchmark and local runs.

Items use every DynamoDB type (S, N with 38 digits, B, BOOL, NULL, M, L, SS, NS, BS) so that what
is generated here exercises the whole conversion.
"""

from __future__ import annotations

import base64
import hashlib
import random
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
STREAM_LABEL = "2026-11-22T00:00:00.000"


def stream_arn(table: str, *, region: str = REGION, account: str = ACCOUNT, label: str = STREAM_LABEL) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}"


def realistic_item(rng: random.Random, key: str, target_bytes: int = 1024) -> dict[str, Any]:
    """A DynamoDB JSON item of about ``target_bytes`` with every attribute type."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    item: dict[str, Any] = {
        "pk": {"S": key},
        "sk": {"S": f"order#{rng.randrange(10**6):06d}"},
        "amount": {"N": f"{rng.randrange(10**6)}.{rng.randrange(100):02d}"},
        "precise": {"N": "1234567890123456789012345678.9012345678"},
        "big": {"N": str(rng.randrange(10**37, 10**38))},
        "tiny": {"N": "-0.000000000000000000000000000000000001"},
        "active": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "blob": {"B": base64.b64encode(rng.randbytes(24)).decode()},
        "tags": {"SS": sorted({rng.choice(words) for _ in range(3)})},
        "scores": {"NS": [str(rng.randrange(1000)), "3.14159265358979323846264338327950288"]},
        "blobs": {"BS": [base64.b64encode(rng.randbytes(6)).decode()]},
        "address": {
            "M": {
                "street": {"S": f"{rng.randrange(1, 999)} {rng.choice(words).title()} Street"},
                "city": {"S": rng.choice(["Zürich", "São Paulo", "Kraków", "Tōkyō", "Seattle"])},
                "geo": {"L": [{"N": f"{rng.uniform(-90, 90):.6f}"}, {"N": f"{rng.uniform(-180, 180):.6f}"}]},
            }
        },
        "history": {
            "L": [{"M": {"at": {"N": str(1_700_000_000 + i)}, "ok": {"BOOL": True}}} for i in range(2)]
        },
    }
    filler = target_bytes - _approximate_size(item)
    if filler > 0:
        item["notes"] = {"S": " ".join(rng.choice(words) for _ in range(filler // 6 + 1))[:filler]}
    return item


def _approximate_size(item: dict[str, Any]) -> int:
    return len(str(item))


def stream_record(
    *,
    table: str,
    event_name: str,
    sequence_number: int,
    created: float,
    keys: dict[str, Any],
    new_image: dict[str, Any] | None = None,
    old_image: dict[str, Any] | None = None,
    ttl_delete: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """One record exactly as Lambda delivers it from a DynamoDB stream (NEW_AND_OLD_IMAGES)."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": created,
        "Keys": keys,
        "SequenceNumber": str(sequence_number),
        "SizeBytes": len(str(new_image or old_image or keys)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_image is not None:
        dynamodb["NewImage"] = new_image
    if old_image is not None:
        dynamodb["OldImage"] = old_image
    record: dict[str, Any] = {
        "eventID": event_id
        or hashlib.md5(f"{table}/{sequence_number}".encode(), usedforsecurity=False).hexdigest(),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn(table),
    }
    if ttl_delete:
        record["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return record


def change_batch(
    rng: random.Random,
    count: int,
    *,
    tables: tuple[str, ...] = ("orders",),
    start: float = 1_795_780_800.0,
    span_seconds: float = 3600.0,
    item_bytes: int = 1024,
    first_sequence: int = 10**20,
) -> list[dict[str, Any]]:
    """``count`` stream records: a mix of INSERT, MODIFY, REMOVE and TTL deletes across ``tables``."""
    records = []
    for i in range(count):
        table = tables[i % len(tables)]
        key = f"customer#{rng.randrange(10**5):05d}"
        keys = {"pk": {"S": key}, "sk": {"S": f"order#{i:06d}"}}
        created = round(start + span_seconds * i / max(count, 1), 3)
        roll = rng.random()
        image = realistic_item(rng, key, item_bytes)
        image.update(keys)
        # Half inserts, a third modifies, the rest deletes (a third of those by TTL).
        new_image: dict[str, Any] | None = image if roll < 0.85 else None
        old_image: dict[str, Any] | None = None if roll < 0.5 else image
        if 0.5 <= roll < 0.85:
            old_image = dict(image, amount={"N": "1"})
        record = stream_record(
            table=table,
            event_name="INSERT" if roll < 0.5 else "MODIFY" if roll < 0.85 else "REMOVE",
            sequence_number=first_sequence + i,
            created=created,
            keys=keys,
            new_image=new_image,
            old_image=old_image,
            ttl_delete=roll > 0.95,
        )
        record["eventID"] = f"{table}-{first_sequence + i}"
        records.append(record)
    return records

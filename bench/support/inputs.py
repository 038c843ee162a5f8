"""Deterministic inputs: generated once per run (seeded) and cached, so every variant of a row
reads the very same bytes."""

from __future__ import annotations

import json
import os
import pickle
import random
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.support.template import LAMBDA_PAYLOAD_BYTES

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
CACHE = RESULTS / "cache"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ChangeQueue"
BUCKET = "bench-bucket"
SEED = 20261122
#: The processing time the benchmarks inject: the hour after the generated changes (``change_batch``
#: starts them at 2026-11-27 12:00 UTC and spreads them over an hour). The real clock would make
#: every change days late, and the aggregator would then also write late-data markers, inflating
#: the PUT counts and the cost row.
PROCESSED_AT = datetime(2026, 11, 27, 13, 30, tzinfo=UTC)


def processing_clock() -> datetime:
    """The benchmarks' clock: always ``PROCESSED_AT``."""
    return PROCESSED_AT


def cached(name: str, build: Callable[[], Any]) -> Any:
    """``build()``'s value, pickled under ``bench/results/cache/<name>.pickle`` (built once per run)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.pickle"
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    value = build()
    fd, tmp = tempfile.mkstemp(dir=CACHE)
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return value


def stream_records(count: int, *, seed: int = SEED, tables: tuple[str, ...] = ("orders",)) -> list[Any]:
    """``count`` realistic ~1 KB DynamoDB stream records (every type, 38-digit numbers)."""
    from changelake_testing.stream_records import change_batch

    def build() -> list[Any]:
        return change_batch(random.Random(seed), count, tables=tables)

    return list(cached(f"stream-{count}-{seed}-{'-'.join(tables)}", build))


def event_text(records: list[Any]) -> str:
    """The Lambda event as the runtime receives it (JSON text), so parsing it is part of the work."""
    return json.dumps({"Records": records})


def records_within(records: list[Any], payload_bytes: int = LAMBDA_PAYLOAD_BYTES) -> list[Any]:
    """The longest prefix of ``records`` whose event fits Lambda's payload limit."""
    total, kept = len('{"Records": []}'), []
    for record in records:
        total += len(json.dumps(record)) + 2
        if total > payload_bytes:
            break
        kept.append(record)
    return kept


def sqs_event_records(bodies: list[str]) -> list[dict[str, Any]]:
    """SQS event records (the format Lambda delivers) for ``bodies``."""
    from changelake.formats.lambda_events import sqs_event

    received = [
        {
            "MessageId": f"00000000-0000-0000-0000-{index:012d}",
            "ReceiptHandle": f"handle-{index}",
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795780800000"},
        }
        for index, body in enumerate(bodies)
    ]
    records: list[dict[str, Any]] = sqs_event(
        received, "arn:aws:sqs:us-east-1:123456789012:ChangeQueue", "us-east-1"
    )["Records"]
    return records

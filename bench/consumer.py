"""Row 2: the stream consumer handler against a naive Powertools consumer and the floor.

Input: batches of 1,000 realistic ~1 KB changes as the Lambda event's JSON text (parsing it is
part of every variant's work, as the runtime does it). SQS and S3 are in-memory fakes that record
requests. Variants:

* ``ours``: ``functions/stream_consumer/app.py``'s ``lambda_handler`` (Powertools logger, metrics
  and tracer decorators included) with its consumer wired to the fakes;
* ``naive``: ``bench/naive_consumer.py`` (BatchProcessor, one SendMessage per record);
* ``floor``: ``json.loads`` of the event, ``json.dumps`` of its records and gzip at the same level;
* ``largest``: ours on the largest batch the template allows (the 6 MB Lambda payload), for the
  memory check against the consumer's 512 MB.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import time
from typing import Any

from bench import (
    BUCKET,
    MAX_MESSAGE_BYTES,
    QUEUE_URL,
    SQS_ROUND_TRIP_S,
    FakeS3Client,
    FakeSqsClient,
    best_of,
    event_text,
    recording_sqs_client,
    records_within,
    stream_records,
)

BATCH = 1_000


class _Context:
    function_name = "bench-consumer"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-consumer"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _events(batches: int) -> list[str]:
    records = stream_records(BATCH * batches)
    return [event_text(records[start : start + BATCH]) for start in range(0, len(records), BATCH)]


def load_handler(sqs: Any, s3: FakeS3Client) -> Any:
    """The real handler module, cold-started, its consumer wired to the fakes."""
    os.environ.setdefault("QUEUE_URL", QUEUE_URL)
    os.environ.setdefault("BUCKET_NAME", BUCKET)
    app = importlib.import_module("functions.stream_consumer.app")
    from changelake.consumer import StreamConsumer
    from changelake.integrations.s3 import S3Store
    from changelake.integrations.sqs import SqsQueue

    app.consumer = StreamConsumer(  # type: ignore[attr-defined]
        SqsQueue(QUEUE_URL, client=sqs),
        S3Store(BUCKET, client=s3),
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    return app


def _measure(handle: Any, events: list[str], repeats: int) -> dict[str, Any]:
    def work() -> None:
        for text in events:
            handle(text)

    work()  # warm up (first-call imports, caches)
    timing = best_of(work, repeats)
    records = BATCH * len(events)
    return {
        "records": records,
        "wall_s": timing.wall,
        "cpu_s": timing.cpu,
        "rate": records / timing.cpu,
        "cpu_us_per_record": timing.cpu / records * 1e6,
    }


def _ours(batches: int, repeats: int) -> dict[str, Any]:
    events = _events(batches)
    sqs, s3 = FakeSqsClient(keep_bodies=False), FakeS3Client()
    app = load_handler(recording_sqs_client(sqs), s3)
    context = _Context()

    def handle(text: str) -> None:
        response = app.lambda_handler(json.loads(text), context)
        assert response == {"batchItemFailures": []}, response

    result = _measure(handle, events, repeats)
    calls_per_batch = sum(sqs.calls.values()) / (batches * (repeats + 1))
    return {**result, "sqs_requests_per_batch": calls_per_batch}


def _naive(batches: int, repeats: int) -> dict[str, Any]:
    from bench.naive_consumer import NaiveConsumer

    events = _events(batches)
    sqs = FakeSqsClient(keep_bodies=False)
    consumer = NaiveConsumer(QUEUE_URL, recording_sqs_client(sqs))
    context = _Context()

    def handle(text: str) -> None:
        response = consumer.lambda_handler(json.loads(text), context)
        assert response == {"batchItemFailures": []}, response

    result = _measure(handle, events, repeats)
    return {**result, "sqs_requests_per_batch": sum(sqs.calls.values()) / (batches * (repeats + 1))}


def _floor(batches: int, repeats: int) -> dict[str, Any]:
    from changelake.envelope import COMPRESSION_LEVEL

    events = _events(batches)

    def handle(text: str) -> None:
        records = json.loads(text)["Records"]
        gzip.compress(json.dumps(records).encode(), compresslevel=COMPRESSION_LEVEL, mtime=0)

    return _measure(handle, events, repeats)


def _largest() -> dict[str, Any]:
    records = records_within(stream_records(10_000))  # batch size 10,000, capped by 6 MB
    text = event_text(records)
    sqs, s3 = FakeSqsClient(keep_bodies=False), FakeS3Client()
    app = load_handler(recording_sqs_client(sqs), s3)
    start = time.process_time()
    response = app.lambda_handler(json.loads(text), _Context())
    cpu = time.process_time() - start
    assert response == {"batchItemFailures": []}, response
    return {
        "records": len(records),
        "event_bytes": len(text),
        "cpu_s": cpu,
        "cpu_us_per_record": cpu / len(records) * 1e6,
        "rate": len(records) / cpu,
    }


VARIANTS = {"ours": _ours, "naive": _naive, "floor": _floor, "largest": _largest}


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    from bench import CONSUMER_MEMORY_MB, run_variant

    batches, repeats = (2, 2) if quick else (5, 3)
    ours = run_variant("consumer", "ours", batches=batches, repeats=repeats)
    naive = run_variant("consumer", "naive", batches=batches, repeats=repeats)
    floor = run_variant("consumer", "floor", batches=batches, repeats=repeats)
    largest = run_variant("consumer", "largest")
    vs_naive = naive["cpu_s"] / ours["cpu_s"]
    vs_floor = ours["cpu_s"] / floor["cpu_s"]
    # Modelled wall time per batch: CPU plus one SQS round trip per request (no network here).
    for figures in (ours, naive):
        figures["modelled_wall_per_batch_s"] = (
            figures["cpu_s"] / batches + figures["sqs_requests_per_batch"] * SQS_ROUND_TRIP_S
        )
    vs_naive_wall = naive["modelled_wall_per_batch_s"] / ours["modelled_wall_per_batch_s"]
    fits = largest["peak_rss_mb"] < CONSUMER_MEMORY_MB
    return {
        "row": 2,
        "name": "Stream consumer, batches of 1,000 x ~1 KB",
        "unit": "records/s",
        "variants": {
            "changelake handler": ours,
            "naive Powertools consumer": naive,
            "floor: json.loads + json.dumps + gzip": floor,
            f"changelake, largest batch ({largest['records']:,} records, 6 MB)": largest,
        },
        "ratio": vs_naive,
        "ratio_text": f"CPU {vs_naive:.1f}x the naive consumer, {vs_naive_wall:.0f}x with a "
        f"{SQS_ROUND_TRIP_S * 1000:.0f} ms SQS round trip; {vs_floor:.2f}x the floor's CPU",
        "target": ">= 10x naive, within 2x floor, < 512 MB",
        "holds": vs_naive_wall >= 10 and vs_floor <= 2 and fits,
        "vs_floor": vs_floor,
        "vs_naive_modelled_wall": vs_naive_wall,
        "notes": f"largest batch peak RSS {largest['peak_rss_mb']:.0f} MB of {CONSUMER_MEMORY_MB} MB; "
        f"SQS requests per 1,000-change batch: ours {ours['sqs_requests_per_batch']:.1f}, "
        f"naive {naive['sqs_requests_per_batch']:.0f}",
    }

"""Row 4: the aggregator writing partitions, against the gzip floor for the same bytes.

Input: the SQS messages the consumer packs from realistic ~1 KB changes (one table, one hour),
as the Lambda SQS event's JSON text. Variants:

* ``ours``: ``changelake.ingest.aggregator.Aggregator.process`` with a fake S3 client (event parse included);
* ``floor``: ``gzip.compress`` of the same JSON lines at the aggregator's level;
* ``largest``: ours on the largest SQS batch the template allows (6 MB Lambda payload of
  256 KB messages), for the memory check against the aggregator's 1024 MB.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bench.support.fakes import FakeS3Client
from bench.support.inputs import BUCKET, cached, processing_clock, sqs_event_records, stream_records
from bench.support.template import LAMBDA_PAYLOAD_BYTES, MAX_MESSAGE_BYTES
from bench.support.timing import best_of, per_record, take_turns_figures, turns


def bodies_and_lines(count: int) -> tuple[list[str], list[bytes]]:
    """The packed SQS bodies for ``count`` changes, and their change lines."""

    def build() -> tuple[list[str], list[bytes]]:
        from changelake.formats.change_line import to_change_line
        from changelake.formats.envelope import MessagePacker, PackedMessage

        lines = [to_change_line(record).line for record in stream_records(count)]
        packed = MessagePacker(MAX_MESSAGE_BYTES).pack(enumerate(lines))
        bodies = [item.body for item in packed if isinstance(item, PackedMessage)]
        return bodies, lines

    bodies, lines = cached(f"bodies-{count}", build)
    return list(bodies), list(lines)


def _aggregator(s3: FakeS3Client) -> Any:
    from changelake.ingest.aggregator import Aggregator
    from changelake.integrations.s3 import S3Store

    return Aggregator(S3Store(BUCKET, client=s3), clock=processing_clock)


def _ours(count: int, repeats: int) -> dict[str, Any]:
    bodies, _ = bodies_and_lines(count)
    text = json.dumps({"Records": sqs_event_records(bodies)})
    s3 = FakeS3Client(keep_objects=False)
    aggregator = _aggregator(s3)

    def work() -> None:
        result = aggregator.process(json.loads(text)["Records"])
        assert result.records_stored == count, result
        assert not result.failed_message_ids, result

    return {"records": count, "messages": len(bodies), **per_record(best_of(work, repeats), count)}


def _floor(count: int, repeats: int) -> dict[str, Any]:
    from bench.support.timing import gzip_floor
    from changelake.ingest.aggregator import RAW_COMPRESSION_LEVEL

    _, lines = bodies_and_lines(count)
    content = b"".join(line + b"\n" for line in lines)
    timing = best_of(lambda: gzip_floor(content, RAW_COMPRESSION_LEVEL), repeats)
    return {"records": count, "bytes": len(content), **per_record(timing, count)}


def _largest(count: int) -> dict[str, Any]:
    bodies, _ = bodies_and_lines(count)
    size = len('{"Records": []}')
    chosen: list[str] = []
    for body, record in zip(bodies, sqs_event_records(bodies), strict=True):
        size += len(json.dumps(record)) + 2
        if size > LAMBDA_PAYLOAD_BYTES:
            break
        chosen.append(body)
    text = json.dumps({"Records": sqs_event_records(chosen)})
    del bodies
    aggregator = _aggregator(FakeS3Client(keep_objects=False))
    cpu0 = time.process_time()
    result = aggregator.process(json.loads(text)["Records"])
    cpu = time.process_time() - cpu0
    assert not result.failed_message_ids
    return {
        "records": result.records_stored,
        "messages": len(chosen),
        "event_bytes": len(text),
        "cpu_s": cpu,
        "rate": result.records_stored / cpu,
        "cpu_us_per_record": cpu / result.records_stored * 1e6,
    }


def _interleaved(count: int, repeats: int) -> dict[str, Any]:
    """CPU of ours and the gzip floor on the same records, taking turns in one process."""
    from bench.support.timing import gzip_floor
    from changelake.ingest.aggregator import RAW_COMPRESSION_LEVEL

    bodies, lines = bodies_and_lines(count)
    text = json.dumps({"Records": sqs_event_records(bodies)})
    content = b"".join(line + b"\n" for line in lines)
    aggregator = _aggregator(FakeS3Client(keep_objects=False))

    def ours() -> None:
        assert aggregator.process(json.loads(text)["Records"]).records_stored == count

    def floor() -> None:
        gzip_floor(content, RAW_COMPRESSION_LEVEL)

    return turns({"ours": ours, "floor": floor}, repeats)


VARIANTS = {"ours": _ours, "floor": _floor, "largest": _largest, "interleaved": _interleaved}


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    from bench.support.template import AGGREGATOR_MEMORY_MB
    from bench.support.variants import run_variant

    count, repeats = (5_000, 3) if quick else (20_000, 5)
    ours = run_variant("bench.rows.aggregator", "ours", count=count, repeats=repeats)
    floor = run_variant("bench.rows.aggregator", "floor", count=count, repeats=repeats)
    largest = run_variant("bench.rows.aggregator", "largest", count=40_000 if not quick else 10_000)
    # CPU from one process where both take turns (same load); RSS from their own processes.
    taken = run_variant("bench.rows.aggregator", "interleaved", count=count, repeats=repeats + 2)
    take_turns_figures((("ours", ours), ("floor", floor)), taken, count)
    ratio = ours["cpu_s"] / floor["cpu_s"]
    fits = largest["peak_rss_mb"] < AGGREGATOR_MEMORY_MB
    return {
        "row": 4,
        "name": "Aggregator writing partitions",
        "unit": "records/s",
        "variants": {
            "changelake Aggregator": ours,
            "floor: gzip of the same lines": floor,
            f"changelake, largest batch ({largest['messages']} msgs, "
            f"{largest['records']:,} records)": largest,
        },
        "ratio": ratio,
        "ratio_text": f"{ratio:.2f}x the gzip floor's CPU",
        "target": "near the gzip floor; < 1024 MB",
        "holds": ratio <= 2 and fits,
        "notes": f"largest batch peak RSS {largest['peak_rss_mb']:.0f} MB of {AGGREGATOR_MEMORY_MB} MB; "
        f"{ours['messages']} SQS messages carried {count:,} changes",
    }

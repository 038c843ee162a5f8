"""zlib level study for the two gzip writers: SQS bodies (envelope) and raw/ objects (aggregator).

``python -m bench.studies.levels [--records N]``: for each level 1..9, on the bench's realistic change
lines, the packing CPU per record (``MessagePacker``, 1,000-record batches as the consumer packs
them), records per 256 KB message and SQS cost per million changes (billed 64 KB units of the
sends, receives and deletes are all per message, so the send side is what the level changes),
the Lambda cost of that CPU, and for raw/ objects the gzip CPU per record and bytes per record.
Prints a table; the levels chosen in ``envelope.COMPRESSION_LEVEL`` and
``aggregator.RAW_COMPRESSION_LEVEL`` cite these figures.
"""

from __future__ import annotations

import argparse
import gzip
import math
import zlib
from typing import Any

from bench.support.inputs import stream_records
from bench.support.prices import LAMBDA_ARM_PER_GB_SECOND, SQS_BILLING_CHUNK_BYTES, SQS_PER_MILLION_REQUESTS
from bench.support.template import CONSUMER_MEMORY_MB, MAX_MESSAGE_BYTES
from bench.support.timing import best_of


def _lines(count: int) -> list[bytes]:
    from changelake.formats.change_line import to_change_line

    return [to_change_line(record).line for record in stream_records(count)]


def envelope_level(lines: list[bytes], level: int, repeats: int = 5) -> dict[str, Any]:
    from changelake.formats import envelope
    from changelake.formats.envelope import MessagePacker, PackedMessage

    saved, envelope.COMPRESSION_LEVEL = envelope.COMPRESSION_LEVEL, level
    try:

        def pack_batches() -> None:
            for start in range(0, len(lines), 1000):
                for _ in MessagePacker(MAX_MESSAGE_BYTES).pack(enumerate(lines[start : start + 1000])):
                    pass

        cpu = best_of(pack_batches, repeats).cpu
        # A long stream packs full messages: their record count is what the level buys.
        messages = [
            item
            for item in MessagePacker(MAX_MESSAGE_BYTES).pack(enumerate(lines))
            if isinstance(item, PackedMessage)
        ]
    finally:
        envelope.COMPRESSION_LEVEL = saved
    full = messages[:-1] or messages
    per_message = sum(item.count for item in full) / len(full)
    chunks = sum(math.ceil(len(item.body) / SQS_BILLING_CHUNK_BYTES) for item in full) / len(full)
    messages_per_million = 1e6 / per_message
    # Send (batched, billed by 64 KB of payload), receive and delete: one billed unit set per message.
    billed_per_million = messages_per_million * (chunks + 2 * chunks / 10)
    cpu_per_record = cpu / len(lines)
    return {
        "level": level,
        "pack_cpu_us_per_record": cpu_per_record * 1e6,
        "records_per_message": per_message,
        "sqs_usd_per_million": billed_per_million * SQS_PER_MILLION_REQUESTS / 1e6,
        "lambda_usd_per_million": cpu_per_record * 1e6 * CONSUMER_MEMORY_MB / 1024 * LAMBDA_ARM_PER_GB_SECOND,
    }


def raw_level(lines: list[bytes], level: int, repeats: int = 5) -> dict[str, Any]:
    content = b"".join(line + b"\n" for line in lines)
    cpu = best_of(lambda: gzip.compress(content, compresslevel=level, mtime=0), repeats).cpu
    compressed = gzip.compress(content, compresslevel=level, mtime=0)
    size = len(compressed)
    inflate = best_of(lambda: zlib.decompress(compressed, 31), repeats).cpu
    return {
        "level": level,
        "gzip_cpu_us_per_record": cpu / len(lines) * 1e6,
        "bytes_per_record": size / len(lines),
        "ratio": len(content) / size,
        "inflate_us_per_record": inflate / len(lines) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    lines = _lines(args.records)
    print(f"{args.records:,} change lines, {sum(map(len, lines)) / len(lines):,.0f} bytes each on average")
    print(
        "SQS bodies (envelope): level, pack CPU/record, records per 256 KB message, $/M changes: SQS, Lambda"
    )
    for level in range(1, 10):
        row = envelope_level(lines, level)
        print(
            f"  {level}  {row['pack_cpu_us_per_record']:5.1f} us  {row['records_per_message']:7,.0f}"
            f"  ${row['sqs_usd_per_million']:.5f}  ${row['lambda_usd_per_million']:.5f}"
        )
    print("raw/ objects (aggregator): level, gzip CPU/record, bytes/record, ratio, inflate CPU/record")
    for level in range(1, 10):
        row = raw_level(lines, level)
        print(
            f"  {level}  {row['gzip_cpu_us_per_record']:5.1f} us  {row['bytes_per_record']:6.0f} B"
            f"  {row['ratio']:4.2f}:1  {row['inflate_us_per_record']:4.1f} us"
        )


if __name__ == "__main__":
    main()

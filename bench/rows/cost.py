"""Row 3: requests and dollars per million changes, changelake against Kinesis Data Streams + Firehose.

Our counts are measured, not assumed: the real consumer and aggregator run on a sample (batches
of 1,000 realistic ~1 KB changes, one table, one hour) with fakes that count every request and its
payload, and the figures are scaled to a million changes. Compaction's share is measured the same
way (a GET per raw object, a LIST per partition, its CPU to gunzip, parse, order and gzip the hour)
with one compacted PUT per partition hour. Lambda GB-seconds come from the measured CPU time and
the template's memory sizes (real durations also include network waits; see docs/performance.md).

The Firehose side prices the same changes through DynamoDB -> Kinesis Data Streams (on-demand)
-> Firehose with dynamic partitioning, from the measured record sizes. It is a lower bound: it
leaves out the transform Lambda (or JQ hours) Firehose needs to write plain JSON into event-time
partitions, and the stream's fixed hourly charge, shown apart.

Assumptions for the SQS side (Lambda's event source mappings): the aggregator's mapping receives
up to 10 messages per ReceiveMessage and deletes them with DeleteMessageBatch; an invocation holds
as many messages as fit in the 6 MB payload (AggregatorBatchSize 1000 never binds at ~200 KB each);
idle long polls are a fixed monthly cost, not per change.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections import defaultdict
from typing import Any

from bench.support import prices as p
from bench.support.fakes import FakeS3Client, FakeSqsClient
from bench.support.inputs import BUCKET, QUEUE_URL, processing_clock, sqs_event_records, stream_records
from bench.support.template import (
    AGGREGATOR_MEMORY_MB,
    COMPACTION_MEMORY_MB,
    CONSUMER_MEMORY_MB,
    LAMBDA_PAYLOAD_BYTES,
    MAX_MESSAGE_BYTES,
)

MILLION = 1_000_000
BATCH = 1_000


def _units(payload: int) -> int:
    return max(1, math.ceil(payload / p.SQS_BILLING_CHUNK_BYTES))


def _sample(count: int) -> dict[str, Any]:
    from changelake.formats.change_line import order_key, parse_change_line
    from changelake.ingest.aggregator import Aggregator
    from changelake.ingest.consumer import StreamConsumer
    from changelake.integrations.s3 import S3Store
    from changelake.integrations.sqs import SqsQueue

    records = stream_records(count)
    sqs, s3 = FakeSqsClient(), FakeS3Client()
    consumer = StreamConsumer(
        SqsQueue(QUEUE_URL, client=sqs), S3Store(BUCKET, client=s3), max_message_bytes=MAX_MESSAGE_BYTES
    )
    consumer_cpu, invocations = 0.0, 0
    for start in range(0, count, BATCH):
        text = json.dumps({"Records": records[start : start + BATCH]})
        cpu0 = time.process_time()
        result = consumer.process(json.loads(text)["Records"])
        consumer_cpu += time.process_time() - cpu0
        invocations += 1
        assert result.failed_sequence_number is None
    send_calls = dict(sqs.calls)
    send_units = sum(_units(payload) for payload in sqs.payloads)
    claims_put = s3.calls.get("PutObject", 0)

    # The aggregator's mapping: ReceiveMessage of up to 10, invocations filled to the 6 MB payload.
    bodies = sqs.bodies
    receive_calls = math.ceil(len(bodies) / 10)
    receive_units = sum(
        _units(sum(len(body) for body in bodies[i : i + 10])) for i in range(0, len(bodies), 10)
    )
    delete_calls = receive_calls
    raw = FakeS3Client()
    aggregator = Aggregator(S3Store(BUCKET, client=raw), clock=processing_clock)
    aggregator_cpu, aggregator_invocations, size = 0.0, 0, 0
    batch: list[str] = []
    groups: list[list[str]] = []
    for body in bodies:
        if batch and size + len(body) + 600 > LAMBDA_PAYLOAD_BYTES:
            groups.append(batch)
            batch, size = [], 0
        batch.append(body)
        size += len(body) + 600
    if batch:
        groups.append(batch)
    for group in groups:
        text = json.dumps({"Records": sqs_event_records(group)})
        cpu0 = time.process_time()
        stored = aggregator.process(json.loads(text)["Records"])
        aggregator_cpu += time.process_time() - cpu0
        aggregator_invocations += 1
        assert not stored.failed_message_ids
    raw_puts = raw.calls.get("PutObject", 0)

    # Compaction of the hour: read every raw object, order and de-duplicate, write gzip.
    partitions: dict[str, list[bytes]] = defaultdict(list)
    for key, stored_body in raw.objects.items():
        partitions[key.rsplit("/", 1)[0]].append(stored_body)
    cpu0 = time.process_time()
    compacted_bytes = 0
    for objects in partitions.values():
        changes = [parse_change_line(line) for body in objects for line in gzip.decompress(body).splitlines()]
        unique = {change.event_id: change for change in changes}
        content = b"".join(change.line + b"\n" for change in sorted(unique.values(), key=order_key))
        compacted_bytes += len(gzip.compress(content, compresslevel=6, mtime=0))
    compaction_cpu = time.process_time() - cpu0

    sizes = [len(json.dumps(record)) for record in records]
    cdc_units = [
        math.ceil(max(1, int(record["dynamodb"]["SizeBytes"])) / p.DYNAMODB_CDC_UNIT_BYTES)
        for record in records
    ]
    return {
        "changes": count,
        "consumer_invocations": invocations,
        "consumer_cpu_s": consumer_cpu,
        "sqs_send_calls": sum(send_calls.values()),
        "sqs_send_units": send_units,
        "sqs_messages": len(bodies),
        "sqs_bytes": sum(len(body) for body in bodies),
        "sqs_receive_calls": receive_calls,
        "sqs_receive_units": receive_units,
        "sqs_delete_calls": delete_calls,
        "claim_puts": claims_put,
        "aggregator_invocations": aggregator_invocations,
        "aggregator_cpu_s": aggregator_cpu,
        "raw_puts": raw_puts,
        "raw_bytes": raw.bytes_put,
        "partitions": len(partitions),
        "compaction_cpu_s": compaction_cpu,
        "compacted_bytes": compacted_bytes,
        "record_bytes": sum(sizes),
        "kinesis_billed_bytes": sum(
            math.ceil(size / p.KINESIS_RECORD_ROUNDING_BYTES) * p.KINESIS_RECORD_ROUNDING_BYTES
            for size in sizes
        ),
        "firehose_billed_bytes": sum(
            math.ceil(size / p.FIREHOSE_RECORD_ROUNDING_BYTES) * p.FIREHOSE_RECORD_ROUNDING_BYTES
            for size in sizes
        ),
        "cdc_units": sum(cdc_units),
    }


VARIANTS = {"sample": _sample}


def ours_per_million(s: dict[str, Any], hours_per_million: float) -> dict[str, float]:
    scale = MILLION / s["changes"]
    sqs_calls = (s["sqs_send_calls"] + s["sqs_receive_calls"] + s["sqs_delete_calls"]) * scale
    sqs_units = (s["sqs_send_units"] + s["sqs_receive_units"] + s["sqs_delete_calls"]) * scale
    partition_hours = hours_per_million  # one table: one partition per event-time hour
    compaction_gets = s["raw_puts"] * scale
    compaction_lists = partition_hours
    compaction_puts = partition_hours
    puts = (s["raw_puts"] + s["claim_puts"]) * scale + compaction_puts + compaction_lists
    lambda_requests = (s["consumer_invocations"] + s["aggregator_invocations"]) * scale + partition_hours
    gb_seconds = (
        (
            s["consumer_cpu_s"] * CONSUMER_MEMORY_MB
            + s["aggregator_cpu_s"] * AGGREGATOR_MEMORY_MB
            + s["compaction_cpu_s"] * COMPACTION_MEMORY_MB
        )
        / 1024
        * scale
    )
    dollars = {
        "sqs": sqs_units / MILLION * p.SQS_PER_MILLION_REQUESTS,
        "s3_put_list": puts / 1000 * p.S3_PUT_PER_THOUSAND,
        "s3_get": compaction_gets / 1000 * p.S3_GET_PER_THOUSAND,
        "lambda_requests": lambda_requests / MILLION * p.LAMBDA_PER_MILLION_REQUESTS,
        "lambda_duration": gb_seconds * p.LAMBDA_ARM_PER_GB_SECOND,
    }
    return {
        "sqs_api_calls": sqs_calls,
        "sqs_billed_requests": sqs_units,
        "s3_puts_and_lists": puts,
        "s3_gets": compaction_gets,
        "lambda_invocations": lambda_requests,
        "lambda_gb_seconds": gb_seconds,
        **{f"usd_{name}": value for name, value in dollars.items()},
        "usd_total": sum(dollars.values()),
    }


def firehose_per_million(s: dict[str, Any]) -> dict[str, float]:
    scale = MILLION / s["changes"]
    data_gb = s["record_bytes"] * scale / p.GB
    objects = max(1.0, s["record_bytes"] * scale / p.FIREHOSE_DYNAMIC_PARTITIONING_BUFFER_BYTES)
    dollars = {
        "dynamodb_cdc": s["cdc_units"] * scale / MILLION * p.DYNAMODB_CDC_PER_MILLION_UNITS,
        "kinesis_write": s["kinesis_billed_bytes"] * scale / p.GB * p.KINESIS_ON_DEMAND_WRITE_PER_GB,
        "kinesis_read": data_gb * p.KINESIS_ON_DEMAND_READ_PER_GB,
        "firehose_ingest": s["firehose_billed_bytes"] * scale / p.GB * p.FIREHOSE_INGEST_PER_GB,
        "dynamic_partitioning": data_gb * p.FIREHOSE_DYNAMIC_PARTITIONING_PER_GB
        + objects / 1000 * p.FIREHOSE_DYNAMIC_PARTITIONING_PER_THOUSAND_OBJECTS,
        "s3_put": objects / 1000 * p.S3_PUT_PER_THOUSAND,
    }
    return {
        "data_gb": data_gb,
        "firehose_billed_gb": s["firehose_billed_bytes"] * scale / p.GB,
        "s3_objects": objects,
        **{f"usd_{name}": value for name, value in dollars.items()},
        "usd_total": sum(dollars.values()),
        "usd_fixed_per_month_stream": p.KINESIS_ON_DEMAND_STREAM_HOUR * p.HOURS_PER_MONTH,
    }


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    from bench.support.variants import run_variant

    count = 5_000 if quick else 20_000
    sample = run_variant("bench.rows.cost", "sample", count=count)
    # Partition hours per million changes at a steady 1,000 changes/s (3.6 M per hour).
    ours = ours_per_million(sample, hours_per_million=MILLION / 3_600_000)
    firehose = firehose_per_million(sample)
    ratio = firehose["usd_total"] / ours["usd_total"]
    return {
        "row": 3,
        "name": "Cost per million changes (us-east-1 list prices)",
        "unit": "",
        "variants": {
            "changelake": {
                **ours,
                "display": f"${ours['usd_total']:.4f}/M: {ours['sqs_api_calls']:,.0f} SQS calls "
                f"({ours['sqs_billed_requests']:,.0f} billed), {ours['s3_puts_and_lists']:,.0f} S3 PUT/LIST, "
                f"{ours['s3_gets']:,.0f} GET, {ours['lambda_invocations']:,.0f} invocations, "
                f"{ours['lambda_gb_seconds']:,.1f} GB-s",
            },
            "DynamoDB -> Kinesis on-demand -> Firehose (dyn. partitioning)": {
                **firehose,
                "display": f"${firehose['usd_total']:.4f}/M (+ ${firehose['usd_fixed_per_month_stream']:.2f}"
                f"/month stream-hours): {firehose['data_gb']:.2f} GB, "
                f"billed {firehose['firehose_billed_gb']:.2f} GB at 5 KB/record",
            },
        },
        "ratio": ratio,
        "ratio_text": f"{ours['usd_total'] / firehose['usd_total']:.3f} of Firehose's cost "
        f"({ratio:.0f}x cheaper)",
        "target": "<= 1/3 of Firehose",
        "holds": ours["usd_total"] * 3 <= firehose["usd_total"],
        "sample": sample,
        "notes": "ours: "
        + ", ".join(f"{k[4:]} ${v:.5f}" for k, v in ours.items() if k.startswith("usd_") and k != "usd_total")
        + "; firehose: "
        + ", ".join(
            f"{k[4:]} ${v:.4f}" for k, v in firehose.items() if k.startswith("usd_") and "fixed" not in k
        ),
    }

"""Row 2: the stream consumer handler against a naive Powertools consumer and the floor.

Input: batches of 1,000 realistic ~1 KB changes as the Lambda event's JSON text (parsing it is
part of every variant's work, as the runtime does it). SQS and S3 are in-memory fakes that record
requests. Variants:

* ``ours``: ``functions/stream_consumer/app.py``'s ``lambda_handler`` (Powertools logger, metrics
  and tracer decorators included) with its consumer wired to the fakes;
* ``naive``: ``bench/baselines/naive_consumer.py`` (BatchProcessor, one SendMessage per record);
* ``floor``: ``json.loads`` of the event, ``json.dumps`` of its records and gzip at the same level;
* ``ours_schema``: ours with a JSON Schema for the items (``SCHEMA_DIR``: every record validated,
  ``bench.rows.snapshot_parquet.ITEM_SCHEMA``: bounded decimals, a 38-digit integer, nested values);
* ``largest``: ours on the largest batch the template allows (the 6 MB Lambda payload), for the
  memory check against the consumer's 512 MB;
* ``ours_moto`` / ``naive_moto``: the same two consumers sending to one real moto server on
  127.0.0.1 (started by ``run`` in the parent process, so its CPU is not the consumers'): every
  request is a real HTTP round trip over loopback, measured in wall-clock time, not modelled.
"""

from __future__ import annotations

import gzip
import importlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.support.fakes import FakeS3Client, FakeSqsClient, recording_sqs_client
from bench.support.inputs import BUCKET, QUEUE_URL, event_text, records_within, stream_records
from bench.support.template import MAX_MESSAGE_BYTES
from bench.support.timing import best_of, per_record, take_turns_figures, turns

BATCH = 1_000
#: Round trip assumed per SQS request when modelling wall time (in-region SendMessage(Batch)).
SQS_ROUND_TRIP_S = 0.005


class _Context:
    function_name = "bench-consumer"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-consumer"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _handler(lambda_handler: Callable[[Any, Any], Any]) -> Callable[[str], None]:
    """Handles an event's JSON text as Lambda would (one context throughout); nothing may fail."""
    context = _Context()

    def handle(text: str) -> None:
        response = lambda_handler(json.loads(text), context)
        assert response == {"batchItemFailures": []}, response

    return handle


def _events(batches: int) -> list[str]:
    records = stream_records(BATCH * batches)
    return [event_text(records[start : start + BATCH]) for start in range(0, len(records), BATCH)]


def load_handler(sqs: Any, s3: FakeS3Client, *, schema_dir: Path | None = None) -> Any:
    """The real handler module, cold-started, its consumer wired to the fakes (and the schemas of
    ``schema_dir``, as ``SCHEMA_DIR`` would)."""
    os.environ.setdefault("QUEUE_URL", QUEUE_URL)
    os.environ.setdefault("BUCKET_NAME", BUCKET)
    app = importlib.import_module("functions.stream_consumer.app")
    from changelake.ingest.consumer import StreamConsumer
    from changelake.ingest.schema import SchemaRegistry
    from changelake.integrations.s3 import S3Store
    from changelake.integrations.sqs import SqsQueue

    app.consumer = StreamConsumer(  # type: ignore[attr-defined]
        SqsQueue(QUEUE_URL, client=sqs),
        S3Store(BUCKET, client=s3),
        max_message_bytes=MAX_MESSAGE_BYTES,
        schemas=SchemaRegistry.from_directory(schema_dir),
    )
    return app


def _schema_dir(root: Path) -> Path:
    """A ``SCHEMA_DIR`` holding the bench items' schema for their table."""
    from bench.rows.snapshot_parquet import ITEM_SCHEMA

    (root / "orders.json").write_text(json.dumps(ITEM_SCHEMA))
    return root


def _measure(handle: Any, events: list[str], repeats: int) -> dict[str, Any]:
    def work() -> None:
        for text in events:
            handle(text)

    work()  # warm up (first-call imports, caches)
    records = BATCH * len(events)
    return {"records": records, **per_record(best_of(work, repeats), records)}


def _ours(batches: int, repeats: int) -> dict[str, Any]:
    events = _events(batches)
    sqs, s3 = FakeSqsClient(keep_bodies=False), FakeS3Client()
    app = load_handler(recording_sqs_client(sqs), s3)
    result = _measure(_handler(app.lambda_handler), events, repeats)
    calls_per_batch = sum(sqs.calls.values()) / (batches * (repeats + 1))
    return {**result, "sqs_requests_per_batch": calls_per_batch}


def _ours_schema(batches: int, repeats: int) -> dict[str, Any]:
    events = _events(batches)
    s3 = FakeS3Client()
    with tempfile.TemporaryDirectory() as scratch:
        app = load_handler(
            recording_sqs_client(FakeSqsClient(keep_bodies=False)), s3, schema_dir=_schema_dir(Path(scratch))
        )
    result = _measure(_handler(app.lambda_handler), events, repeats)
    assert not s3.objects, "every bench item is valid: nothing may be quarantined"
    return result


def _naive(batches: int, repeats: int) -> dict[str, Any]:
    from bench.baselines.naive_consumer import NaiveConsumer

    events = _events(batches)
    sqs = FakeSqsClient(keep_bodies=False)
    consumer = NaiveConsumer(QUEUE_URL, recording_sqs_client(sqs))
    result = _measure(_handler(consumer.lambda_handler), events, repeats)
    return {**result, "sqs_requests_per_batch": sum(sqs.calls.values()) / (batches * (repeats + 1))}


def _floor(batches: int, repeats: int) -> dict[str, Any]:
    from changelake.formats.envelope import COMPRESSION_LEVEL

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


def _moto_clients(endpoint: str) -> tuple[Any, Any]:
    import boto3

    from changelake.integrations.base import build_client

    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    sqs, s3 = build_client("sqs"), build_client("s3")
    s3_admin = boto3.client("s3")
    if BUCKET not in {bucket["Name"] for bucket in s3_admin.list_buckets().get("Buckets", [])}:
        s3_admin.create_bucket(Bucket=BUCKET)
    return sqs, s3


#: Messages per moto queue before the next request goes to a fresh one (see ``_ShallowQueues``).
_MOTO_QUEUE_DEPTH = 50


def _wall(handle: Any, events: list[str], repeats: int) -> dict[str, Any]:
    """Best-of wall time (and the CPU of that repeat) for all ``events``, after one warm-up batch."""
    handle(events[0])
    best: tuple[float, float] | None = None
    for _ in range(repeats):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for text in events:
            handle(text)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    assert best is not None
    records = BATCH * len(events)
    return {
        "records": records,
        "wall_s": best[0],
        "cpu_s": best[1],
        "rate": records / best[0],
        "wall_us_per_record": best[0] / records * 1e6,
        "cpu_us_per_record": best[1] / records * 1e6,
    }


class _ShallowQueues:
    """The real moto SQS client, each request sent to a queue holding < 50 messages.

    moto's time per SendMessage grows with the messages its queue holds (on this machine 10 ms
    empty, ~30 ms at 600 messages: it rescans them), which a real queue's does not and which
    would only penalise the naive consumer's 1,000 sends per batch. So requests go to
    pre-created queues in turn, a new one after every 50 messages; the only cost in the measured
    process is this method call. Both consumers get the same client.
    """

    def __init__(self, sqs: Any, prefix: str, count: int) -> None:
        self.sqs = sqs
        self.urls = [sqs.create_queue(QueueName=f"{prefix}-{index}")["QueueUrl"] for index in range(count)]
        self.sent = 0

    def _url(self, messages: int) -> str:
        url = self.urls[self.sent // _MOTO_QUEUE_DEPTH]
        self.sent += messages
        return url

    def send_message(self, QueueUrl: str, **kwargs: Any) -> Any:
        return self.sqs.send_message(QueueUrl=self._url(1), **kwargs)

    def send_message_batch(self, QueueUrl: str, Entries: list[Any], **kwargs: Any) -> Any:
        return self.sqs.send_message_batch(QueueUrl=self._url(len(Entries)), Entries=Entries, **kwargs)

    def messages(self) -> int:
        return sum(
            int(
                self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
            )
            for url in self.urls
        )


def _queues_for(sqs: Any, prefix: str, batches: int, repeats: int) -> _ShallowQueues:
    sends = BATCH * batches * (repeats + 1)  # the most requests either consumer makes
    return _ShallowQueues(sqs, prefix, sends // _MOTO_QUEUE_DEPTH + 1)


def _ours_moto(endpoint: str, batches: int, repeats: int) -> dict[str, Any]:
    events = _events(batches)
    sqs, s3 = _moto_clients(endpoint)
    queues = _queues_for(sqs, "bench-ours", batches, repeats)
    os.environ.update(QUEUE_URL=queues.urls[0], BUCKET_NAME=BUCKET)
    app = importlib.import_module("functions.stream_consumer.app")
    from changelake.ingest.consumer import StreamConsumer
    from changelake.integrations.s3 import S3Store
    from changelake.integrations.sqs import SqsQueue

    app.consumer = StreamConsumer(  # type: ignore[attr-defined]
        SqsQueue(queues.urls[0], client=queues),
        S3Store(BUCKET, client=s3),
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    result = _wall(_handler(app.lambda_handler), events, repeats)
    return {**result, "messages_in_queue": queues.messages()}


def _naive_moto(endpoint: str, batches: int, repeats: int) -> dict[str, Any]:
    from bench.baselines.naive_consumer import NaiveConsumer

    events = _events(batches)
    sqs, _ = _moto_clients(endpoint)
    queues = _queues_for(sqs, "bench-naive", batches, repeats)
    consumer = NaiveConsumer(queues.urls[0], queues)
    result = _wall(_handler(consumer.lambda_handler), events, repeats)
    return {**result, "messages_in_queue": queues.messages()}


def _on_moto(batches: int, repeats: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both consumers against one moto server on loopback, run one after the other."""
    from moto.server import ThreadedMotoServer

    from bench.support.variants import run_variant

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        ours = run_variant(
            "bench.rows.consumer", "ours_moto", endpoint=endpoint, batches=batches, repeats=repeats
        )
        naive = run_variant(
            "bench.rows.consumer", "naive_moto", endpoint=endpoint, batches=batches, repeats=repeats
        )
    finally:
        server.stop()
    # Every record reached the queue: ours in packed messages, the naive one in one message each.
    assert naive["messages_in_queue"] == BATCH * (1 + batches * repeats), naive  # warm-up: one batch
    return ours, naive


def _interleaved(batches: int, repeats: int) -> dict[str, Any]:
    """CPU of ours (without and with a schema), the naive consumer and the floor on the same events,
    taking turns in one process."""
    from bench.baselines.naive_consumer import NaiveConsumer
    from changelake.formats.envelope import COMPRESSION_LEVEL

    events = _events(batches)
    with tempfile.TemporaryDirectory() as scratch:
        app = load_handler(
            recording_sqs_client(FakeSqsClient(keep_bodies=False)),
            FakeS3Client(),
            schema_dir=_schema_dir(Path(scratch)),
        )
    checked = app.consumer
    app = load_handler(recording_sqs_client(FakeSqsClient(keep_bodies=False)), FakeS3Client())
    unchecked = app.consumer
    naive = NaiveConsumer(QUEUE_URL, recording_sqs_client(FakeSqsClient(keep_bodies=False)))
    ours, theirs = _handler(app.lambda_handler), _handler(naive.lambda_handler)

    def ours_with(consumer: Any) -> Callable[[], None]:
        def work() -> None:
            app.consumer = consumer  # the handler module's one consumer: each variant sets its own
            for text in events:
                ours(text)

        return work

    def naive_work() -> None:
        for text in events:
            theirs(text)

    def floor_work() -> None:
        for text in events:
            records = json.loads(text)["Records"]
            gzip.compress(json.dumps(records).encode(), compresslevel=COMPRESSION_LEVEL, mtime=0)

    works = {
        "ours": ours_with(unchecked),
        "ours_schema": ours_with(checked),
        "naive": naive_work,
        "floor": floor_work,
    }
    for work in works.values():
        work()  # warm up
    return turns(works, repeats)


VARIANTS = {
    "interleaved": _interleaved,
    "ours": _ours,
    "ours_schema": _ours_schema,
    "naive": _naive,
    "floor": _floor,
    "largest": _largest,
    "ours_moto": _ours_moto,
    "naive_moto": _naive_moto,
}


def run(quick: bool = False, **_: Any) -> dict[str, Any]:
    from bench.support.template import CONSUMER_MEMORY_MB
    from bench.support.variants import run_variant

    batches, repeats = (2, 2) if quick else (5, 3)
    ours = run_variant("bench.rows.consumer", "ours", batches=batches, repeats=repeats)
    ours_schema = run_variant("bench.rows.consumer", "ours_schema", batches=batches, repeats=repeats)
    naive = run_variant("bench.rows.consumer", "naive", batches=batches, repeats=repeats)
    floor = run_variant("bench.rows.consumer", "floor", batches=batches, repeats=repeats)
    largest = run_variant("bench.rows.consumer", "largest")
    # CPU from one process where the three take turns (same load); RSS from their own processes.
    taken = run_variant("bench.rows.consumer", "interleaved", batches=batches, repeats=repeats + 2)
    take_turns_figures(
        (("ours", ours), ("ours_schema", ours_schema), ("naive", naive), ("floor", floor)),
        taken,
        BATCH * batches,
    )
    ours_moto, naive_moto = _on_moto(batches=1 if quick else 2, repeats=2)
    vs_naive_real = naive_moto["wall_s"] / ours_moto["wall_s"]
    vs_naive_real_cpu = naive_moto["cpu_s"] / ours_moto["cpu_s"]
    vs_naive = naive["cpu_s"] / ours["cpu_s"]
    # Two floors: taking turns with the consumers (boto3 and Powertools loaded, so json.loads of
    # the event pays the garbage collector's walks over their objects, as any consumer that sends
    # does), and alone in its own process (nothing loaded: the lowest floor). The target uses both.
    vs_floor_turns = ours["cpu_s"] / floor["cpu_s"]
    vs_floor_alone = ours["own_process_cpu_s"] / floor["own_process_cpu_s"]
    vs_floor = max(vs_floor_turns, vs_floor_alone)
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
            "changelake handler, items checked against a JSON Schema": ours_schema,
            "naive Powertools consumer": naive,
            "floor: json.loads + json.dumps + gzip": floor,
            f"changelake, largest batch ({largest['records']:,} records, 6 MB)": largest,
            "changelake handler -> moto SQS on loopback (wall clock)": ours_moto,
            "naive consumer -> moto SQS on loopback (wall clock)": naive_moto,
        },
        "ratio": vs_naive,
        "ratio_text": f"CPU {vs_naive:.1f}x the naive consumer with an in-memory HTTP layer; sending "
        f"to moto on loopback: wall clock {vs_naive_real:.0f}x, CPU {vs_naive_real_cpu:.0f}x; "
        f"{vs_floor_turns:.2f}x the floor's CPU ({vs_floor_alone:.2f}x the floor alone in its process)",
        "target": ">= 10x naive, within 2x floor, < 512 MB",
        # 10x is judged on the measured wall clock (what a Lambda is billed and lags on); CPU alone
        # cannot reach it: the floor's CPU is already more than a tenth of the naive consumer's.
        "holds": vs_naive_real >= 10 and vs_floor <= 2 and fits,
        "vs_floor": vs_floor,
        "vs_floor_turns": vs_floor_turns,
        "vs_floor_alone": vs_floor_alone,
        "vs_naive_cpu": vs_naive,
        "vs_naive_moto_wall": vs_naive_real,
        "vs_naive_moto_cpu": vs_naive_real_cpu,
        "vs_naive_modelled_wall": vs_naive_wall,
        "notes": f"a JSON Schema for the items costs "
        f"{ours_schema['cpu_us_per_record'] - ours['cpu_us_per_record']:.1f} us of CPU per record; "
        f"largest batch peak RSS {largest['peak_rss_mb']:.0f} MB of {CONSUMER_MEMORY_MB} MB; "
        f"SQS requests per 1,000-change batch: ours {ours['sqs_requests_per_batch']:.1f}, "
        f"naive {naive['sqs_requests_per_batch']:.0f}; on moto: naive "
        f"{naive_moto['wall_us_per_record'] / 1000:.2f} ms wall per record (a SendMessage round trip "
        f"each), ours {ours_moto['wall_us_per_record']:.0f} us; a consumer as cheap as the floor would "
        f"be {naive['cpu_s'] / floor['cpu_s']:.1f}x the naive one in CPU",
    }

"""The benchmark suite: changelake side by side with the alternatives (``make bench``).

Every measurement ("variant") runs in its own Python subprocess, so its peak RSS
(``ru_maxrss``) is its own: interpreter, imports, input and work. Inputs are generated once per
run, deterministically (seeded), and cached under ``bench/results/cache/`` so that every variant
of a row reads the very same bytes. Times are the best of several repeats (the machine is shared,
so the minimum is the least noisy estimate) and only ratios between variants of one run count.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = RESULTS / "cache"

#: The template's memory sizes (template.yaml), for the memory checks and GB-seconds.
CONSUMER_MEMORY_MB = 512
AGGREGATOR_MEMORY_MB = 1024
COMPACTION_MEMORY_MB = 1024
#: Lambda's largest synchronous/event-source payload: the cap on a batch, whatever its size setting.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024
MAX_MESSAGE_BYTES = 262_144  # template default MaxMessageBytes
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/ChangeQueue"
BUCKET = "bench-bucket"
SEED = 20261122


# -- deterministic inputs ----------------------------------------------------------------------


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


# -- fakes that record requests ----------------------------------------------------------------


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, amount: int | None = None) -> bytes:
        if amount is None:
            data, self._data = self._data, b""
            return data
        data, self._data = self._data[:amount], self._data[amount:]
        return data


@dataclass
class FakeSqsClient:
    """An in-memory SQS client: accepts every entry and records each request and its payload."""

    calls: dict[str, int] = field(default_factory=dict)
    payloads: list[int] = field(default_factory=list)  # payload bytes of each request
    bodies: list[str] = field(default_factory=list)
    keep_bodies: bool = True

    def _count(self, operation: str, payload: int) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        self.payloads.append(payload)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        payload = 0
        for entry in Entries:
            body = entry["MessageBody"]
            payload += len(body.encode())
            if self.keep_bodies:
                self.bodies.append(body)
        self._count("SendMessageBatch", payload)
        return {
            "Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in Entries],
            "Failed": [],
        }

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        self._count("SendMessage", len(MessageBody.encode()))
        if self.keep_bodies:
            self.bodies.append(MessageBody)
        return {"MessageId": str(len(self.payloads))}


@dataclass
class FakeS3Client:
    """An in-memory S3 client recording requests (objects kept so claims can be read back)."""

    calls: dict[str, int] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    bytes_put: int = 0
    keep_objects: bool = True

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._count("PutObject")
        self.bytes_put += len(Body)
        if self.keep_objects:
            self.objects[Key] = Body
        return {"ETag": '"fake"'}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._count("GetObject")
        return {"Body": FakeBody(self.objects[Key]), "ETag": '"fake"'}


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


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    wall: float  # best wall seconds
    cpu: float  # process CPU seconds of that same repeat


def best_of(work: Callable[[], object], repeats: int) -> Timing:
    """The run of ``work`` with the least CPU time of ``repeats`` (and its wall time).

    CPU time (``time.process_time``) is what ratios are computed from: on a shared machine the
    wall clock also counts time other processes held the core.
    """
    best: Timing | None = None
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        work()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if best is None or cpu < best.cpu:
            best = Timing(wall, cpu)
    assert best is not None
    return best


def interleaved(works: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Each work's least-CPU run of ``repeats``, the works taking turns (a, b, c, a, b, c, ...).

    The ratios of a row come from here: on a shared machine the load changes from minute to
    minute, and variants measured one after the other in separate processes can differ by 1.5x
    for that alone; taking turns in one process exposes every variant to the same load.
    """
    best: dict[str, Timing] = {}
    for _ in range(repeats):
        for name, work in works.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            work()
            timing = Timing(time.perf_counter() - wall0, time.process_time() - cpu0)
            if name not in best or timing.cpu < best[name].cpu:
                best[name] = timing
    return best


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gzip_floor(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


# -- running one variant in its own process ----------------------------------------------------


def run_variant(module: str, variant: str, **params: Any) -> dict[str, Any]:
    """Run ``bench.<module>.VARIANTS[variant](**params)`` in a fresh interpreter; its dict + peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "bench._variant", module, variant, str(out), json.dumps(params)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "shared")]))
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "changelake-bench")
        env.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if completed.returncode != 0 or not out.exists():
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
            raise RuntimeError(f"bench.{module} {variant} failed:\n" + "\n".join(tail))
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# -- a real botocore SQS client whose HTTP layer is replaced by an in-memory recorder ------------

#: Round trip assumed per SQS request when modelling wall time (in-region SendMessage(Batch)).
SQS_ROUND_TRIP_S = 0.005


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def recording_sqs_client(recorder: FakeSqsClient) -> Any:
    """A boto3 SQS client that does everything but the network: serialize, sign, parse.

    The ``before-send`` hook answers every request in memory (accepting every entry, with the
    MD5 botocore checks) and records it in ``recorder``, so both consumers pay the SDK's real
    per-request CPU cost, which an in-memory fake alone would hide.
    """
    import hashlib

    import boto3
    from botocore.awsrequest import AWSResponse

    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        endpoint_url="https://sqs.us-east-1.amazonaws.com",
    )

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def answer(request: Any, **_: Any) -> Any:
        body = json.loads(request.body)
        if "Entries" in body:
            recorder.send_message_batch(QueueUrl=body["QueueUrl"], Entries=body["Entries"])
            response: dict[str, Any] = {
                "Successful": [
                    {
                        "Id": entry["Id"],
                        "MessageId": entry["Id"],
                        "MD5OfMessageBody": md5(entry["MessageBody"]),
                    }
                    for entry in body["Entries"]
                ],
                "Failed": [],
            }
        else:
            recorder.send_message(QueueUrl=body["QueueUrl"], MessageBody=body["MessageBody"])
            response = {"MessageId": "m", "MD5OfMessageBody": md5(body["MessageBody"])}
        headers = {"content-type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _RawBody(json.dumps(response).encode()))

    client.meta.events.register("before-send.sqs", answer)
    return client

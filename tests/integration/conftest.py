"""The local stack the operator tools are driven against: template.yaml deployed on a moto server."""

from __future__ import annotations

import io
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from changelake.formats.change_line import to_change_line
from changelake.formats.layout import Partition, partition_key
from changelake.ingest.aggregator import raw_object
from changelake.pieces import PIECES_FOLDER, Piece
from changelake_cli.main import main
from changelake_cli.output import Output
from changelake_local.aws import client
from changelake_local.deploy import deploy
from changelake_local.deployed_stack import DeployedStack
from changelake_local.endpoint import MotoEndpoint, aws_environment
from changelake_local.functions import applied_environment
from changelake_local.invoke_server import LambdaInvokeServer
from changelake_local.state_machines import FAN_OUT_STATE_MACHINE, LocalStateMachines
from changelake_testing.stream_records import change_batch

ROWS_PER_HOUR = 30


@dataclass
class LocalStack:
    endpoint: str
    stack: DeployedStack
    s3: Any
    sqs: Any
    #: Where the stack's state machines' Lambda tasks go (nothing served unless a test serves it).
    lambdas: LambdaInvokeServer

    def put_hour(self, table: str, hour_start: datetime, seed: int, rows: int = ROWS_PER_HOUR) -> str:
        """One raw/ object of ``rows`` real change records in the hour from ``hour_start``."""
        records = change_batch(
            random.Random(seed),
            rows,
            tables=(table,),
            start=hour_start.timestamp(),
            span_seconds=3599,
            item_bytes=300,
            first_sequence=10**20 + seed * 10_000,
        )
        lines = [to_change_line(record) for record in records]
        name, body = raw_object(lines)
        key = partition_key("raw", Partition.of_event_time(table, lines[0].event_time), name)
        self.s3.put_object(Bucket=self.stack.bucket, Key=key, Body=body)
        return key


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """template.yaml deployed on its own moto server (a child process), for the whole session."""
    with MotoEndpoint(port=0) as endpoint:
        # only around the deploy: the environment lock must be free for functions run by other threads
        with applied_environment(aws_environment(endpoint.url)):
            stack = deploy(endpoint.url)
        clients = {name: client(name, endpoint.url) for name in ("s3", "sqs")}
        yield LocalStack(endpoint.url, stack, clients["s3"], clients["sqs"], endpoint.lambdas)


def this_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def days_ago(days: int, hour: int = 9) -> datetime:
    return (this_hour() - timedelta(days=days)).replace(hour=hour)


@dataclass
class Ran:
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Ran:
    """``changelake ARGV`` in this process, its stdout and stderr captured (not a terminal)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=Output(out=out, err=err, environ={}))
    return Ran(code, out.getvalue(), err.getvalue())


#: How long a held fan-out waits at most for its test (its pieces block until then).
HELD_SECONDS = 120.0


@dataclass
class HeldFanOut:
    """A batch function's side of a fan-out held half way: the plan hands the day (SnapshotFunction)
    or the hour (CompactionFunction) over in ``count`` pieces, answering as that function does;
    piece 0 records itself under the folder's ``_pieces/`` (as a piece worker does) and returns, the
    others wait until ``release``; after that every plan finds it done."""

    s3: Any
    bucket: str
    table: str
    dt: str
    hour: str | None
    count: int
    released: threading.Event = field(default_factory=threading.Event)
    waiting: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def target(self) -> dict[str, Any]:
        day = {"table": self.table, "dt": self.dt}
        return day if self.hour is None else {**day, "hour": self.hour}

    @property
    def folder(self) -> str:
        if self.hour is None:
            return f"snapshot/{self.table}/dt={self.dt}/"
        return f"compacted/{self.table}/dt={self.dt}/hour={self.hour}/"

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        # a day's buckets or an hour's slices; the snapshot's plan names the day, compaction's does not
        piece, count = ("bucket", "buckets") if self.hour is None else ("slice", "slices")
        named = self.target if self.hour is None else {}
        if event.get("plan"):
            if self.released.is_set():
                return {"done": True, **named}
            pieces = [{**self.target, count: self.count, piece: k} for k in range(self.count)]
            commit = {**self.target, count: self.count, "commit": True}
            return {"done": False, **named, "pieces": pieces, "commit": commit}
        if event.get("commit"):
            return {"committed": True}
        if event[piece] == 0:
            key = f"{self.folder}{PIECES_FOLDER}g1/{Piece(0, self.count).name}.json"
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"{}")
            return {piece: 0}
        with self._lock:
            self.waiting += 1
        self.released.wait(HELD_SECONDS)
        return {piece: event[piece]}


@contextmanager
def held_fan_out(
    stack: LocalStack, table: str, dt: str, count: int = 3, hour: str | None = None
) -> Iterator[str]:
    """An execution of the fan-out state machine for ``table``'s days up to ``dt`` (or its ``hour``),
    held while the block runs with 1 of ``count`` pieces built (its name); then released and waited
    for to its end."""
    fake = HeldFanOut(stack.s3, stack.stack.bucket, table, dt, hour, count)
    function = "SnapshotFunction" if hour is None else "CompactionFunction"
    stack.lambdas.serve({stack.stack.physical(function): fake})
    machines = LocalStateMachines(stack.stack, poll_interval=0.1)
    name = f"held-{table}-{dt}-{uuid.uuid4().hex[:8]}"
    arn = machines.start(FAN_OUT_STATE_MACHINE, fake.target, name=name)
    try:
        deadline = time.monotonic() + HELD_SECONDS
        while fake.waiting < count - 1:
            assert time.monotonic() < deadline, "the held fan-out's pieces never started"
            time.sleep(0.1)
        yield name
    finally:
        fake.released.set()
        ended = machines.wait(arn, timeout=HELD_SECONDS)
        assert ended.status == "SUCCEEDED", (ended.error, ended.cause)

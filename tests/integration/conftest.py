"""The local stack the operator tools are driven against: template.yaml deployed on a moto server."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from changelake.formats.change_line import to_change_line
from changelake.formats.layout import Partition, partition_key
from changelake.ingest.aggregator import raw_object
from changelake_cli.main import main
from changelake_cli.output import Output
from changelake_local.aws import client
from changelake_local.deploy import deploy
from changelake_local.deployed_stack import DeployedStack
from changelake_local.endpoint import MotoEndpoint, aws_environment
from changelake_local.functions import applied_environment
from changelake_testing.stream_records import change_batch

ROWS_PER_HOUR = 30


@dataclass
class LocalStack:
    endpoint: str
    stack: DeployedStack
    s3: Any
    sqs: Any

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
        yield LocalStack(endpoint.url, stack, clients["s3"], clients["sqs"])


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

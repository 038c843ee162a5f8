"""The user's tables for ``make run TABLES=N``: made as a user's already exist, bootstrapped as a user does.

``create_user_tables`` makes each table outside the stack, writes items to it before its stream is
enabled (so they reach the lake only through a bootstrap), then enables the stream with both images;
every other table (the first, the third, ...) gets point-in-time recovery, so one is bootstrapped by
export and the next by Scan. The stack is then deployed with ``SourceStreamArns`` naming their streams.
``bootstrap_with_cli`` runs ``changelake bootstrap --table NAME --json`` against the local endpoint,
as a process of its own, exactly as the operator types it.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from changelake_local.aws import client
from changelake_local.generator import _as_boto3
from changelake_testing.stream_records import realistic_item
from changelake_testing.tables import pk_sk_table

#: Items each table has before its stream is enabled (the part only the bootstrap brings in).
ITEMS_BEFORE_STREAM = 100
ITEM_BYTES = 512
#: A bootstrap of ITEMS_BEFORE_STREAM items takes a few seconds locally (the export completes at once,
#: the Scan is a few segments); this only keeps a stuck one from stopping the run.
BOOTSTRAP_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class UserTable:
    name: str
    stream_arn: str
    point_in_time_recovery: bool

    @property
    def method(self) -> str:
        """How ``changelake bootstrap`` reads its items from before the stream."""
        return "export" if self.point_in_time_recovery else "scan"


def user_table_name(index: int) -> str:
    return f"user-table-{index + 1}"


def create_user_tables(endpoint: str, count: int, *, seed: int = 11) -> list[UserTable]:
    """``count`` tables with ``ITEMS_BEFORE_STREAM`` items each, then a stream of both images."""
    dynamodb = client("dynamodb", endpoint)
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    tables = []
    for index in range(count):
        name = user_table_name(index)
        dynamodb.create_table(**pk_sk_table(name))
        for serial in range(ITEMS_BEFORE_STREAM):
            item = _as_boto3(realistic_item(rng, f"existing#{serial:04d}", ITEM_BYTES))
            dynamodb.put_item(TableName=name, Item=item)
        recovery = index % 2 == 0
        if recovery:
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        described = dynamodb.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        tables.append(UserTable(name, str(described["TableDescription"]["LatestStreamArn"]), recovery))
    return tables


@dataclass(frozen=True)
class CliBootstrap:
    """What ``changelake bootstrap --table NAME --json`` did: its exit code, JSON and messages."""

    table: str
    exit_code: int
    result: dict[str, Any]
    messages: str

    @property
    def snapshot_result(self) -> dict[str, Any]:
        """SnapshotFunction's answer to the bootstrap event, with the method (an error if none)."""
        invocation = self.result.get("snapshot") or {}
        answer = invocation.get("result") if isinstance(invocation, dict) else None
        if not isinstance(answer, dict):
            error = invocation.get("error") if isinstance(invocation, dict) else None
            return {"method": self.result.get("method"), "error": error or self.messages.strip()}
        return {"method": self.result.get("method"), **answer}


def bootstrap_with_cli(endpoint: str, stack_name: str, table: str) -> CliBootstrap:
    """``changelake --endpoint ENDPOINT --stack STACK bootstrap --table TABLE --json`` as a separate
    process, as the operator runs it. Not in this process: the command runs SnapshotFunction with that
    function's environment (the Scan's segments from threads of its own), and the running pipeline
    holds this process's environment for its own functions."""
    argv = ["--endpoint", endpoint, "--stack", stack_name, "bootstrap", "--table", table, "--json"]
    ran = subprocess.run(  # noqa: S603 - our own CLI, arguments from this module
        [sys.executable, "-m", "changelake_cli", *argv],
        capture_output=True,
        text=True,
        timeout=BOOTSTRAP_TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true"},
    )
    try:
        result = json.loads(ran.stdout)
    except json.JSONDecodeError:
        result = {}
    return CliBootstrap(table, ran.returncode, result if isinstance(result, dict) else {}, ran.stderr)

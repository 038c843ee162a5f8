"""Running the stack's functions by hand: compaction, snapshot and redrive, with their summaries."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from changelake.exceptions import UnsafeNameError
from changelake.formats.layout import check_table_name
from changelake.integrations.base import AwsAdapter
from changelake_cli.errors import UsageError
from changelake_cli.status import Operator, check_hour

if TYPE_CHECKING:
    from changelake_local.deployed_stack import DeployedStack

_BOOTSTRAP = re.compile(
    r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/\S*AWSDynamoDB/[^/]+/manifest-summary\.json\Z"
)
#: The redrive function's own bound on ``max_messages`` (changelake.redrive.RedriveRequest).
MAX_REDRIVE = 1_000_000


@dataclass(frozen=True)
class Invocation:
    """One synchronous invocation: the event, the function's answer, or its error."""

    function: str
    event: dict[str, Any]
    result: Any
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


class Invoker(Protocol):
    def __call__(self, logical_id: str, function_name: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        """The function's answer and, if it raised, ``"<errorType>: <errorMessage>"``."""


class LambdaInvoker(AwsAdapter):
    """Lambda's Invoke API, synchronously (``RequestResponse``)."""

    service = "lambda"

    def __call__(self, logical_id: str, function_name: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        response = self._request(
            "invoke",
            f"lambda:{function_name}",
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        body = response["Payload"].read()
        answer = json.loads(body) if body else None
        if response.get("FunctionError"):
            detail = answer if isinstance(answer, dict) else {}
            return None, f"{detail.get('errorType', 'Error')}: {detail.get('errorMessage', answer)}"
        return answer, None


class LocalInvoker:
    """The local stack's functions, run in this process.

    moto's Lambda runs function code only in Docker, so the local stack (``make run``,
    ``python -m changelake_local serve``) runs its functions in-process; this does the same, with the
    environment the deployed stack gives each function, against the same endpoint.
    """

    def __init__(self, endpoint: str, stack_name: str) -> None:
        self.endpoint = endpoint
        self.stack_name = stack_name
        self._stack: DeployedStack | None = None

    def __call__(self, logical_id: str, function_name: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        from changelake_local.invoke import attach, run_function

        if self._stack is None:
            self._stack = attach(self.endpoint, stack_name=self.stack_name)
        try:
            with contextlib.redirect_stdout(sys.stderr):  # the function's log lines are not our data
                return run_function(self._stack, logical_id, event), None
        except Exception as exc:  # noqa: BLE001 - a function error, reported as Lambda reports one
            return None, f"{type(exc).__name__}: {exc}"


def invoke(operator: Operator, invoker: Invoker, logical_id: str, event: dict[str, Any]) -> Invocation:
    name = operator.stack.function(logical_id)
    started = time.monotonic()
    result, error = invoker(logical_id, name, event)
    return Invocation(logical_id, event, result, error, round(time.monotonic() - started, 3))


def compaction_event(operator: Operator, table: str, dt: str, hour: str | None) -> dict[str, Any]:
    """The manual event (docs/contracts.md), checked against the lake first (nothing invoked if wrong)."""
    event: dict[str, Any] = {"table": operator.check_table(table), "dt": operator.check_day(dt).isoformat()}
    if hour is not None:
        event["hour"] = check_hour(hour)
    return event


def snapshot_event(operator: Operator, table: str, dt: str | None, bootstrap: str | None) -> dict[str, Any]:
    if (dt is None) == (bootstrap is None):
        raise UsageError(
            "snapshot takes exactly one of --dt DAY and --bootstrap s3://.../manifest-summary.json"
        )
    if bootstrap is not None:
        try:
            check_table_name(table)
        except UnsafeNameError as exc:
            raise UsageError(str(exc)) from None
        if not _BOOTSTRAP.match(bootstrap):
            raise UsageError(
                "--bootstrap must be s3://<bucket>/<prefix>/AWSDynamoDB/<export id>/manifest-summary.json, "
                f"not {bootstrap!r}"
            )
        return {"table": table, "bootstrap": bootstrap}
    assert dt is not None
    return {"table": operator.check_table(table), "dt": operator.check_day(dt).isoformat()}


def redrive_event(dry_run: bool, max_messages: int | None) -> dict[str, Any]:
    event: dict[str, Any] = {"dry_run": dry_run}
    if max_messages is not None:
        if not 1 <= max_messages <= MAX_REDRIVE:
            raise UsageError(f"--max must be 1 to {MAX_REDRIVE}, not {max_messages}")
        event["max_messages"] = max_messages
    return event


def redrive_needs_attention(result: Any) -> bool:
    """Messages or ranges the run could not move, left for a human, or reported lost."""
    if not isinstance(result, dict):
        return False
    stream = result.get("stream_failures") or {}
    return bool(
        result.get("failed")
        or result.get("left_too_many_redrives")
        or stream.get("ranges_failed")
        or stream.get("ranges_lost")
    )

"""A fault layer for the functions' AWS clients, driven by a seeded schedule.

``FaultInjector.attach`` registers botocore event handlers on a client (``build_client`` calls it
through ``changelake.integrations.clients.CLIENT_HOOKS``):

- ``before-send``: the request never reaches the service: throttling, a 5xx, a dropped
  connection or a read timeout. botocore's own retries see these, as they would in AWS.
- ``after-call``: the service did the work but the answer is lost (a read timeout after the
  request was handled), so the caller retries something that already happened.
- ``provide-client-params`` + ``after-call`` on ``SendMessageBatch``: some entries are withheld
  from the request and reported as failed, SQS's partial batch failure.

``crash`` models a handler that dies before its work or after the work but before its answer;
the caller (the property test's Lambda model, or the local stack's mappings) treats either as a
function error, so Lambda's retry rules redeliver a batch whose side effects may already exist.
The same seed gives the same decisions for the same sequence of requests.
"""

from __future__ import annotations

import contextlib
import enum
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from changelake.integrations.base import CLIENT_HOOKS
from changelake_local.esm import Hooks

_WITHHELD = "changelake_faults_withheld"


class FaultKind(enum.StrEnum):
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    CONNECTION_DROPPED = "connection_dropped"
    TIMEOUT = "timeout"
    ANSWER_LOST = "answer_lost"
    PARTIAL_BATCH = "partial_batch"
    CRASH_BEFORE_WORK = "crash_before_work"
    CRASH_BEFORE_ANSWER = "crash_before_answer"


#: The faults a request can meet before it is sent (botocore retries these).
_BEFORE_SEND = (FaultKind.THROTTLED, FaultKind.SERVER_ERROR, FaultKind.CONNECTION_DROPPED, FaultKind.TIMEOUT)


#: A lost answer is rarer than a refused request: a third of the request rate (every request can
#: lose its answer, and botocore does not retry it, so at the full rate few batches would pass).
ANSWER_LOST_SHARE = 3


class InjectedCrash(RuntimeError):
    """A handler crash the schedule chose (Lambda sees a function error)."""


@dataclass(frozen=True)
class FaultProfile:
    """How often each fault happens: ``request_rate`` per AWS request (split evenly between the
    kinds in ``kinds``), ``crash_rate`` per invocation (half before the work, half after)."""

    name: str
    description: str
    request_rate: float = 0.0
    crash_rate: float = 0.0
    kinds: tuple[FaultKind, ...] = (*_BEFORE_SEND, FaultKind.ANSWER_LOST, FaultKind.PARTIAL_BATCH)


#: The profiles ``make run RUN_ARGS="--faults NAME"`` offers (docs/local-mode.md, "Faults").
PROFILES = {
    profile.name: profile
    for profile in (
        FaultProfile("none", "no faults"),
        FaultProfile(
            "flaky",
            "5% of AWS requests fail in any way, 2% of invocations crash",
            request_rate=0.05,
            crash_rate=0.02,
        ),
        FaultProfile(
            "throttled",
            "20% of AWS requests are throttled or partly refused",
            request_rate=0.2,
            kinds=(FaultKind.THROTTLED, FaultKind.PARTIAL_BATCH),
        ),
        FaultProfile(
            "crashy", "10% of invocations crash, before the work or before the answer", crash_rate=0.1
        ),
    )
}


@dataclass
class FaultInjector:
    """Decides, request by request and invocation by invocation, which fault happens."""

    profile: FaultProfile
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - a test schedule, not a secret
        self._lock = threading.Lock()
        self.active = True

    def clear(self) -> None:
        """No more faults from now on (the outage is over)."""
        self.active = False

    @property
    def total(self) -> int:
        return sum(self.injected.values())

    def _draw(self, rate: float, kinds: tuple[FaultKind, ...]) -> FaultKind | None:
        with self._lock:
            if not self.active or not kinds or self._random.random() >= rate:
                return None
            return self._random.choice(kinds)

    def _count(self, kind: FaultKind, operation: str) -> None:
        with self._lock:
            self.injected[f"{kind}:{operation}"] += 1

    def crash(self, stage: FaultKind) -> None:
        """Raise ``InjectedCrash`` if the schedule crashes this invocation at ``stage``."""
        if self._draw(self.profile.crash_rate / 2, (stage,)) is not None:
            self._count(stage, "invoke")
            raise InjectedCrash(f"injected crash: {stage}")

    def attach(self, client: Any) -> None:
        """Register the fault handlers on one botocore client."""
        events = client.meta.events
        protocol = client.meta.service_model.protocol
        events.register("before-send", lambda **kw: self._before_send(protocol, **kw))
        events.register("provide-client-params.sqs.SendMessageBatch", self._withhold_entries)
        events.register("after-call", self._after_call)

    def _before_send(self, protocol: str, *, event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        kinds = tuple(kind for kind in self.profile.kinds if kind in _BEFORE_SEND)
        kind = self._draw(self.profile.request_rate, kinds)
        if kind is None:
            return None
        self._count(kind, operation)
        if kind is FaultKind.CONNECTION_DROPPED:
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind is FaultKind.TIMEOUT:
            raise ReadTimeoutError(endpoint_url=request.url)
        return _error_response(protocol, request.url, throttled=kind is FaultKind.THROTTLED)

    def _withhold_entries(self, *, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries") or []
        if len(entries) < 2 or self._draw(self.profile.request_rate, self._partial_kinds()) is None:
            return
        with self._lock:
            withheld = self._random.sample(entries, self._random.randrange(1, len(entries)))
        self._count(FaultKind.PARTIAL_BATCH, "SendMessageBatch")
        context[_WITHHELD] = [entry["Id"] for entry in withheld]
        params["Entries"] = [entry for entry in entries if entry not in withheld]

    def _partial_kinds(self) -> tuple[FaultKind, ...]:
        return (FaultKind.PARTIAL_BATCH,) if FaultKind.PARTIAL_BATCH in self.profile.kinds else ()

    def _after_call(
        self, *, event_name: str, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        for entry_id in context.pop(_WITHHELD, []):
            parsed.setdefault("Failed", []).append(
                {"Id": entry_id, "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            )
        answer_lost = (FaultKind.ANSWER_LOST,) if FaultKind.ANSWER_LOST in self.profile.kinds else ()
        if self._draw(self.profile.request_rate / ANSWER_LOST_SHARE, answer_lost) is not None:
            self._count(FaultKind.ANSWER_LOST, operation)
            raise ReadTimeoutError(endpoint_url=f"after {operation}")


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Any:
        yield self._payload


def _error_response(protocol: str, url: str, *, throttled: bool) -> AWSResponse:
    """The error answer a service of ``protocol`` gives when it throttles or fails (5xx)."""
    if protocol == "rest-xml":  # S3
        code, status = ("SlowDown", 503) if throttled else ("InternalError", 500)
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        headers = {"Content-Type": "application/xml"}
    else:  # json (SQS, DynamoDB Streams)
        code, status = ("ThrottlingException", 400) if throttled else ("InternalFailure", 500)
        body = json.dumps({"__type": code, "message": "injected"}).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
    return AWSResponse(url, status, headers, _Body(body))


@contextlib.contextmanager
def injecting(injector: FaultInjector) -> Iterator[Hooks]:
    """While inside: every client ``build_client`` makes carries ``injector``'s handlers, and the
    returned mapping hooks crash invocations and clear the faults when the pipeline drains."""
    CLIENT_HOOKS.append(injector.attach)
    try:
        yield Hooks(
            before_invoke=lambda function, event: injector.crash(FaultKind.CRASH_BEFORE_WORK),
            after_invoke=lambda function, event: injector.crash(FaultKind.CRASH_BEFORE_ANSWER),
            on_drain=injector.clear,
        )
    finally:
        CLIENT_HOOKS.remove(injector.attach)

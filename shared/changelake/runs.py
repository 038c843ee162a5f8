"""Run records: one small JSON object per run of a batch function, kept in the DataBucket.

Compaction, snapshot and redrive runs are what an operator asks about ("did last night's
compaction run, how long, how many rows"). Each run leaves one record at::

    _runs/<kind>/dt=YYYY-MM-DD/<request id>.json     (dt: the UTC day it started)

Why the bucket and not CloudWatch Logs Insights: the records are read back by ``changelake
history``, ``status`` and the status page with the S3 permissions those already need (no Logs
Insights query, which is asynchronous, billed per GB scanned and bounded by log retention); a
day's runs are one listing; and the local stack has the same bucket while its logs go to a file.
The prefix starts with an underscore, so Athena, Hive and Spark never take it for data.

Delivery guarantee of ``RunRecorder``: at most one record per invocation attempt, written after
the run's work is done (or failed), under a key named by the request ID, so Lambda's retry of
the same request (the same day) overwrites its own record instead of adding one. The record is
not part of the data path: if its write fails the run's result stands, and the failure is handed
to ``on_unrecorded`` (the handlers log it at ERROR and publish ``RunRecordsFailed``), never
dropped silently. A run
that dies before it finishes (a timeout, an out-of-memory kill) leaves no record; the alarm on the
``<Kind>Succeeded`` metric reports that case.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from changelake.clock import Clock, utc_now
from changelake.exceptions import DeliveryError, InvalidEventError
from changelake.formats import layout

if TYPE_CHECKING:
    from changelake.compaction.compactor import CompactionSummary
    from changelake.integrations.s3 import S3Store
    from changelake.snapshot.service import SnapshotSummary

RUNS_PREFIX = "_runs"
RunKind = Literal["compaction", "snapshot", "redrive"]
RUN_KINDS: tuple[RunKind, ...] = ("compaction", "snapshot", "redrive")
Result = Literal["succeeded", "failed", "error"]
#: The error text kept in a record (the whole traceback is in the function's log).
MAX_ERROR_CHARS = 2000
RECORD_FORMAT = 1


def success_metric_name(kind: RunKind) -> str:
    """``CompactionSucceeded``, ``SnapshotSucceeded``, ``RedriveSucceeded``: 1 per successful run."""
    return f"{kind.capitalize()}Succeeded"


@dataclass(frozen=True)
class RunOutcome:
    """What a run did, as the function knows it when it returns."""

    trigger: str
    result: Result
    tables: tuple[str, ...] = ()
    rows: int = 0
    bytes_out: int = 0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One run, as stored under ``_runs/`` (``to_json``/``from_json`` round-trip)."""

    kind: RunKind
    request_id: str
    started_at: datetime
    finished_at: datetime
    trigger: str
    result: Result
    tables: tuple[str, ...]
    rows: int
    bytes_out: int
    summary: dict[str, Any]
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def key(self) -> str:
        return f"{day_prefix(self.kind, self.started_at)}{self.request_id}.json"

    def to_json(self) -> bytes:
        document = asdict(self)
        document["format"] = RECORD_FORMAT
        document["started_at"] = _iso(self.started_at)
        document["finished_at"] = _iso(self.finished_at)
        document["seconds"] = round(self.seconds, 3)
        document["tables"] = list(self.tables)
        return json.dumps(document, default=str, sort_keys=True).encode()

    @classmethod
    def from_json(cls, body: bytes) -> RunRecord:
        """A stored record; ``ValueError`` if ``body`` is not one."""
        document = json.loads(body)
        if not isinstance(document, dict) or document.get("kind") not in RUN_KINDS:
            raise ValueError("not a changelake run record")
        try:
            return cls(
                kind=document["kind"],
                request_id=str(document["request_id"]),
                started_at=_parse_iso(document["started_at"]),
                finished_at=_parse_iso(document["finished_at"]),
                trigger=str(document["trigger"]),
                result=document["result"],
                tables=tuple(str(name) for name in document.get("tables", [])),
                rows=int(document.get("rows", 0)),
                bytes_out=int(document.get("bytes_out", 0)),
                summary=dict(document.get("summary") or {}),
                error=document.get("error"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a changelake run record: {exc}") from exc


def day_prefix(kind: RunKind, day: datetime) -> str:
    """The folder of one kind's runs that started on ``day`` (UTC)."""
    return layout.day_prefix(RUNS_PREFIX, kind, day.astimezone(UTC).date())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


UnrecordedHandler = Callable[[RunRecord, DeliveryError], None]


class RunDraft:
    """The run in progress: ``finish`` it with the outcome before the ``recording`` block ends."""

    def __init__(self) -> None:
        self.outcome: RunOutcome | None = None

    def finish(self, outcome: RunOutcome) -> None:
        self.outcome = outcome


class RunRecorder:
    """Writes the run records of one kind of function (delivery guarantee: module docstring)."""

    def __init__(
        self, store: S3Store, kind: RunKind, *, on_unrecorded: UnrecordedHandler, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.kind = kind
        self.on_unrecorded = on_unrecorded
        self.clock = clock

    @contextmanager
    def recording(self, request_id: str) -> Iterator[RunDraft]:
        """Record the run of the block: its outcome, or ``error`` if the block raised.

        A refused event (``InvalidEventError``) is not a run: nothing was done, nothing recorded.
        Exceptions always propagate.
        """
        started = self.clock()
        draft = RunDraft()
        try:
            yield draft
        except InvalidEventError:
            raise
        except Exception as exc:
            outcome = draft.outcome or RunOutcome(trigger="unknown", result="error")
            result: Result = "failed" if outcome.result == "failed" else "error"
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            self._write(request_id, started, replace(outcome, result=result, error=error))
            raise
        if draft.outcome is None:
            raise RuntimeError("a recorded run ended without an outcome (call finish)")
        self._write(request_id, started, draft.outcome)

    def _write(self, request_id: str, started: datetime, outcome: RunOutcome) -> None:
        record = RunRecord(
            kind=self.kind,
            request_id=request_id,
            started_at=started,
            finished_at=self.clock(),
            trigger=outcome.trigger,
            result=outcome.result,
            tables=tuple(outcome.tables),
            rows=outcome.rows,
            bytes_out=outcome.bytes_out,
            summary=outcome.summary,
            error=outcome.error,
        )
        try:
            self.store.put(record.key, record.to_json(), content_type="application/json")
        except DeliveryError as exc:
            self.on_unrecorded(record, exc)


def _batch_outcome(
    summary: CompactionSummary | SnapshotSummary, paths: list[str], event: object, rows: int
) -> RunOutcome:
    """A batch run's outcome: failed when its summary lists a failure. Its tables: the first folder
    of each ``<table>/...`` path it names, and the event's table."""
    tables = {path.split("/", 1)[0] for path in paths if path}
    if isinstance(event, dict) and isinstance(event.get("table"), str):
        tables.add(event["table"])
    return RunOutcome(
        trigger=summary.trigger,
        result="failed" if summary.failed else "succeeded",
        tables=tuple(sorted(tables)),
        rows=rows,
        bytes_out=summary.bytes_out,
        summary=summary.as_dict(),
    )


def compaction_outcome(summary: CompactionSummary, event: object) -> RunOutcome:
    """A compaction run's outcome: failed when a partition was not compacted."""
    paths = list(summary.compacted) + list(summary.handed_off) + [f["partition"] for f in summary.failed]
    return _batch_outcome(summary, paths, event, rows=summary.rows_out)


def snapshot_outcome(summary: SnapshotSummary, event: object) -> RunOutcome:
    """A snapshot run's outcome: failed when a table was not brought up to date.

    ``rows`` are the items of the target days' snapshots (a bootstrap's: the items it read): the
    table as it stood, which is what an operator compares from one night to the next.
    """
    paths = list(summary.built) + list(summary.handed_off) + [f["table"] for f in summary.failed]
    return _batch_outcome(summary, paths, event, rows=summary.items)


def redrive_outcome(summary: dict[str, Any]) -> RunOutcome:
    """A redrive run's outcome: failed when a message or range could not be moved or replayed."""
    stream = summary.get("stream_failures") or {}
    failed = int(summary.get("failed", 0)) + int(stream.get("ranges_failed", 0))
    return RunOutcome(
        trigger="dry_run" if summary.get("dry_run") else "redrive",
        result="failed" if failed else "succeeded",
        rows=int(summary.get("moved", 0)) + int(stream.get("records_replayed", 0)),
        summary=summary,
    )

"""Every error changelake raises, and the one place botocore error codes are mapped to them.

Two families matter to callers:

* ``RecordRejected``: this one input can never be processed as it is. It goes to quarantine with
  ``reason`` and the rest of the batch flows on.
* ``DeliveryError``: storing failed (throttling, an unreachable queue, a refused write). The
  input is fine; it must be reported to Lambda as not stored so it is retried.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError


class ChangelakeError(Exception):
    """Base of every changelake error."""


class ConfigurationError(ChangelakeError):
    """The function's environment is missing or malformed; raised at cold start."""


class InvalidEventError(ChangelakeError, ValueError):
    """A manually invoked event is malformed; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RecordRejected(ChangelakeError):
    """One input record can never be processed as it is; it belongs in quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConversionError(RecordRejected):
    """A stream record does not convert to a change record (unknown type tag, malformed field)."""


class SchemaViolation(RecordRejected):
    """A change record's item breaks its table's JSON Schema; ``path`` locates the failure."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(f"schema violation at {path}: {reason}")
        self.path = path


class UnsafeNameError(RecordRejected):
    """A table name is not a safe S3 path segment."""


class EnvelopeError(RecordRejected):
    """An SQS message body is not a changelake envelope, or its payload is corrupt."""


class MalformedFailureRecordError(RecordRejected):
    """A stream-failure queue message is not a Lambda DynamoDB invocation record."""


class DeliveryError(ChangelakeError):
    """Storing failed; the data is intact and must be retried. ``code`` is the service's code."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class ThrottledError(DeliveryError):
    """The service asked us to slow down."""


class QueueUnavailableError(DeliveryError):
    """The queue does not exist or cannot be reached."""


class StorageError(DeliveryError):
    """An S3 request failed."""


class PreconditionFailedError(StorageError):
    """A conditional write lost: the object changed (or appeared) since it was read."""


class ObjectNotFoundError(StorageError):
    """The S3 object or bucket does not exist."""


class AccessDeniedError(DeliveryError):
    """The function's role may not do this."""


class BatchUnrecoverableError(DeliveryError):
    """A stream batch must be retried whole: no sequence number in it can be checkpointed at."""


class StreamRangeExpiredError(DeliveryError):
    """The stream no longer holds the requested records (past its 24-hour retention)."""


class StreamRangeIncompleteError(DeliveryError):
    """The shard did not (yet) hold the whole range; the failure record is kept for a later run."""


class AlreadyStartedError(DeliveryError):
    """A state machine execution of that name was started already (by an earlier try of this run)."""


_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "LimitExceededException",
        "KMS.ThrottlingException",
    }
)
_QUEUE_MISSING_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.QueueDeletedRecently",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "404", "NotFound"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "KMS.AccessDeniedException"})
_EXPIRED_CODES = frozenset({"TrimmedDataAccessException", "ExpiredIteratorException"})
_STARTED_CODES = frozenset({"ExecutionAlreadyExists"})

#: Codes worth retrying after a pause: throttling and the service's own transient faults.
RETRYABLE_CODES = _THROTTLING_CODES | frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "RequestTimeout", "500", "503"}
)


def error_code(exc: ClientError) -> str:
    """The service's error code of ``exc`` (never its message text)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def map_client_error(exc: ClientError | BotoCoreError, *, resource: str) -> DeliveryError:
    """Our error for a botocore failure on ``resource``; callers ``raise map_client_error(e) from e``."""
    if isinstance(exc, BotoCoreError):
        # Connection failures, timeouts, endpoint errors: the service could not be reached.
        unreachable = StorageError if resource.startswith("s3://") else QueueUnavailableError
        return unreachable(f"{resource}: {type(exc).__name__}", code=type(exc).__name__)
    code = error_code(exc)
    default = StorageError if resource.startswith("s3://") else DeliveryError
    return _ERROR_BY_CODE.get(code, default)(f"{resource}: {code}", code)


_ERROR_BY_CODE: dict[str, type[DeliveryError]] = {
    **dict.fromkeys(_THROTTLING_CODES, ThrottledError),
    **dict.fromkeys(_QUEUE_MISSING_CODES, QueueUnavailableError),
    **dict.fromkeys(_NOT_FOUND_CODES, ObjectNotFoundError),
    **dict.fromkeys(_PRECONDITION_CODES, PreconditionFailedError),
    **dict.fromkeys(_ACCESS_CODES, AccessDeniedError),
    **dict.fromkeys(_EXPIRED_CODES, StreamRangeExpiredError),
    **dict.fromkeys(_STARTED_CODES, AlreadyStartedError),
}


class RunError(ChangelakeError):
    """A run left work undone; raised after its summary (``summary``) is logged.

    Raising makes Lambda's asynchronous retry (and the schedule's retry policy) run the event again;
    the work already done is then a no-op.
    """

    def __init__(self, message: str, summary: dict[str, object]) -> None:
        super().__init__(message)
        self.summary = summary


class CompactionError(RunError):
    """A compaction run left a partition undone (partitions already compacted are no-ops on retry)."""


class UnreadableInputError(ChangelakeError):
    """An object the lake reads is not what it should be (not gzip, truncated, a line that is not
    a change of its partition or day); the message names the object, and the line if there is one.

    What was being built from it is not published; nothing is lost (raw/ is untouched).
    """


class CompactionInputError(UnreadableInputError):
    """A raw/ object of a partition holds something that is not a change record of that partition.

    The partition is not published (nothing is lost: raw/ is untouched) and the run reports it.
    """


class SnapshotError(RunError):
    """A snapshot run left a day undone (days already built are no-ops on retry)."""


class SnapshotInputError(UnreadableInputError):
    """A change line of a day (or a line of the snapshot it builds on) cannot be read.

    The message names the object and the line; the day is not published (nor any later day, which
    builds on it) and the run reports it. Nothing is lost: raw/ is untouched.
    """

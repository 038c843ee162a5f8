"""Lambda's event shapes: the ``Records`` of an event-source-mapping event, a stream record as
Lambda delivers it (from a GetRecords record), the SQS event (from ReceiveMessage messages), the
partial batch response, and the stream's on-failure invocation record.

The consumer's event source mapping sends an *invocation record* to the stream-failure queue
when a batch fails past its retries. It holds only the range, never the records:

    {"requestContext": {...}, "responseContext": {...}, "version": "1.0", "timestamp": "...",
     "DDBStreamBatchInfo": {"shardId": "...", "startSequenceNumber": "...",
                            "endSequenceNumber": "...", "approximateArrivalOfFirstRecord": "...",
                            "approximateArrivalOfLastRecord": "...", "batchSize": N,
                            "streamArn": "arn:aws:dynamodb:...:table/<t>/stream/<label>"}}
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

from changelake.exceptions import (
    InvalidEventError,
    MalformedFailureRecordError,
    RecordRejected,
    UnsafeNameError,
)
from changelake.formats.change_line import table_from_arn
from changelake.formats.layout import check_table_name
from changelake.formats.strict_json import loads_checked, rejecting
from changelake.pieces import MAX_PIECES

_DIGITS = r"^[0-9]{1,64}$"
#: Lambda's invocation records nest three levels deep. A deeper one is not from Lambda, and its
#: document is written again (indented, by json's recursive pure-Python encoder) in a loss report.
FAILURE_RECORD_NESTING = 32
Model = TypeVar("Model", bound=BaseModel)


_DT = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


class TableEvent(BaseModel):
    """A manual event naming a table: a safe table name (``check_table_name``), nothing unknown."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    table: StrictStr

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        try:
            return check_table_name(value)
        except UnsafeNameError as exc:
            raise ValueError(exc.reason) from None


class TableDayEvent(TableEvent):
    """A manual event naming a table and a UTC day ``dt`` (``YYYY-MM-DD``, a day that exists)."""

    dt: StrictStr

    @field_validator("dt")
    @classmethod
    def _dt(cls, value: str) -> str:
        if _DT.match(value) is None:
            raise ValueError("must be a date YYYY-MM-DD")
        date.fromisoformat(value)  # ValueError for 2026-02-30
        return value

    @property
    def day(self) -> date:
        return date.fromisoformat(self.dt)


#: How many pieces a manual event builds a folder in (``changelake.pieces``): an integer, 1 to 1000.
PieceCount = Annotated[StrictInt, Field(ge=1, le=MAX_PIECES)]
#: Which piece: an integer, 0 or more (``check_piece`` bounds it by the count).
PieceIndex = Annotated[StrictInt, Field(ge=0)]


def check_piece(index: int, count: int | None) -> int:
    """``index`` if it names one of ``count`` pieces (``count`` None: the count was refused already)."""
    if count is not None and index >= count:
        raise ValueError(f"must be below the count of pieces ({count}): 0 to {count - 1}")
    return index


def validated_event(model: type[Model], event: dict[str, Any]) -> Model:
    """A manual event as ``model``; ``InvalidEventError`` names the first bad field."""
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "event"
        raise InvalidEventError(name, str(error["msg"])) from exc


def records_of(event: object) -> list[Any]:
    """The ``Records`` list of an event-source-mapping event."""
    if not isinstance(event, dict):
        raise InvalidEventError("event", "must be an object")
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEventError("Records", "must be a list")
    return records


class PartialItemFailure(TypedDict):
    """One failed item: a stream record's sequence number or an SQS message's ID."""

    itemIdentifier: str


class PartialItemFailureResponse(TypedDict):
    """What a function returns to an event source mapping with ``ReportBatchItemFailures``.

    Powertools' ``utilities.batch.types`` has the same type, but importing it loads the whole
    batch package (asyncio, the event data classes: about 60 ms of every cold start)."""

    batchItemFailures: list[PartialItemFailure]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The SQS event Lambda delivers for messages received with ``ReceiveMessage`` (the local
    event source mapping, the sample events and the tests build it here)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "dataType": value["DataType"],
                        "stringListValues": [],
                        "binaryListValues": [],
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class _BatchInfo(BaseModel):
    # Deferred, as the invocation record's: only the redrive function reads failure records.
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    shard_id: str = Field(alias="shardId", min_length=1, max_length=128)
    start_sequence_number: str = Field(alias="startSequenceNumber", pattern=_DIGITS)
    end_sequence_number: str = Field(alias="endSequenceNumber", pattern=_DIGITS)
    stream_arn: str = Field(alias="streamArn", min_length=1, max_length=2048)
    approximate_arrival_of_first_record: str | None = Field(
        default=None, alias="approximateArrivalOfFirstRecord"
    )
    batch_size: int | None = Field(default=None, alias="batchSize")


class _InvocationRecord(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    batch_info: _BatchInfo = Field(alias="DDBStreamBatchInfo")


@dataclass(frozen=True, slots=True)
class FailedRange:
    """One failed stream batch: sequence numbers ``start`` through ``end`` of one shard."""

    stream_arn: str
    shard_id: str
    start: str
    end: str
    table: str
    first_arrival: str | None = None
    batch_size: int | None = None

    def holds(self, sequence_number: str) -> bool:
        return int(self.start) <= int(sequence_number) <= int(self.end)

    def described(self) -> dict[str, Any]:
        """The range as a dry run lists it and a loss report names it, in the invocation record's words."""
        return {
            "table": self.table,
            "shard_id": self.shard_id,
            "start_sequence_number": self.start,
            "end_sequence_number": self.end,
            "batch_size": self.batch_size,
            "approximate_arrival_of_first_record": self.first_arrival,
        }


def parse_failure_record(body: object) -> tuple[FailedRange, dict[str, Any]]:
    """The range in one stream-failure queue body, and the body as parsed JSON."""
    if not isinstance(body, str):
        raise MalformedFailureRecordError("failure record body is not a string")
    reason = "not a DynamoDB stream invocation record"
    document = loads_checked(body, reason, MalformedFailureRecordError, FAILURE_RECORD_NESTING)
    with rejecting(reason, MalformedFailureRecordError, detail=True):
        info = _InvocationRecord.model_validate(document).batch_info
    if int(info.start_sequence_number) > int(info.end_sequence_number):
        raise MalformedFailureRecordError("startSequenceNumber is after endSequenceNumber")
    try:
        table = table_from_arn(info.stream_arn)
    except RecordRejected as exc:
        raise MalformedFailureRecordError(f"streamArn: {exc.reason}") from exc
    failed = FailedRange(
        stream_arn=info.stream_arn,
        shard_id=info.shard_id,
        start=info.start_sequence_number,
        end=info.end_sequence_number,
        table=table,
        first_arrival=info.approximate_arrival_of_first_record,
        batch_size=info.batch_size,
    )
    return failed, document


def _epoch_seconds(value: object) -> object:
    """``ApproximateCreationDateTime`` as Lambda delivers it: epoch seconds (boto3 gives a datetime)."""
    if not isinstance(value, datetime):
        return value
    seconds = int((value - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() // 1)
    micros = value.microsecond
    return seconds if micros == 0 else seconds + micros / 1_000_000


def _wire_value(attribute: Any) -> Any:
    """One attribute value with binary data base64-encoded, as in the Lambda event."""
    if not isinstance(attribute, dict):
        return attribute
    converted: dict[str, Any] = {}
    for tag, value in attribute.items():
        if tag == "B" and isinstance(value, bytes | bytearray):
            converted[tag] = base64.b64encode(value).decode()
        elif tag == "BS" and isinstance(value, list):
            converted[tag] = [
                base64.b64encode(item).decode() if isinstance(item, bytes) else item for item in value
            ]
        elif tag == "M" and isinstance(value, dict):
            converted[tag] = {name: _wire_value(item) for name, item in value.items()}
        elif tag == "L" and isinstance(value, list):
            converted[tag] = [_wire_value(item) for item in value]
        else:
            converted[tag] = value
    return converted


def lambda_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record (as boto3 returns it) in the format Lambda delivers to the consumer."""
    converted: dict[str, Any] = {
        key: value for key, value in record.items() if key not in ("dynamodb", "userIdentity")
    }
    stream = dict(record.get("dynamodb") or {})
    if "ApproximateCreationDateTime" in stream:
        stream["ApproximateCreationDateTime"] = _epoch_seconds(stream["ApproximateCreationDateTime"])
    for image in ("Keys", "NewImage", "OldImage"):
        if isinstance(stream.get(image), dict):
            stream[image] = {name: _wire_value(value) for name, value in stream[image].items()}
    converted["dynamodb"] = stream
    converted["eventSourceARN"] = stream_arn
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        # The API spells these PrincipalId/Type; Lambda's event principalId/type.
        converted["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    return converted

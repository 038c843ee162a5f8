"""DynamoDB Streams: reading one shard range back, in the format Lambda delivers, and what of it the
stream no longer holds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from changelake.exceptions import DeliveryError, StreamRangeExpiredError, StreamRangeIncompleteError
from changelake.formats.lambda_events import FailedRange, lambda_record
from changelake.integrations.base import AwsAdapter

#: GetRecords returns at most this many records per call.
GET_RECORDS_LIMIT = 1000
#: Empty GetRecords pages in a row after which an open shard is taken to hold nothing more yet.
MAX_EMPTY_PAGES = 5
#: Fresh iterators fetched for one range after ExpiredIteratorException or a trim while reading
#: (from where reading stands, or from the trim horizon) before giving up.
MAX_ITERATOR_REFRESHES = 3
#: The code of a read the stream refuses because it trimmed the records (past its 24 hours).
_TRIMMED = "TrimmedDataAccessException"


@dataclass(frozen=True, slots=True)
class LostPart:
    """Records of a range that the stream no longer held when they were to be read.

    Every sequence number of the range after ``after`` (None: from the range's start, itself
    gone) and before ``first_held`` (None: through the range's end). The sequence numbers in
    between are not knowable any more: the stream no longer lists them.
    """

    after: str | None
    first_held: str | None
    error_code: str
    error: str

    @classmethod
    def whole_range(cls, error: DeliveryError) -> LostPart:
        """All of a range: the stream no longer holds any of it (or the shard is gone)."""
        return cls(None, None, error.code, str(error))

    @property
    def is_whole_range(self) -> bool:
        return self.after is None and self.first_held is None

    def bounds(self, failed: FailedRange) -> dict[str, str | None]:
        """The part as the loss report states it: one of from/after, one of before/through."""
        start = f"from {failed.start} (the range's start)" if self.after is None else f"after {self.after}"
        stop = (
            f"through {failed.end} (the range's end)"
            if self.first_held is None
            else f"up to, not including, {self.first_held} (the first record the stream still holds)"
        )
        return {
            "from_sequence_number": failed.start if self.after is None else None,
            "after_sequence_number": self.after,
            "before_sequence_number": self.first_held,
            "through_sequence_number": failed.end if self.first_held is None else None,
            "description": f"sequence numbers {start} {stop}",
        }


def _sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


class _RangeRead:
    """Pure bookkeeping of reading one range: what is new, where the stream had trimmed it."""

    def __init__(self, failed: FailedRange) -> None:
        self.failed = failed
        self.last: str | None = None  # the highest sequence number read so far, in the range or not
        self.trim: StreamRangeExpiredError | None = None  # the stream trimmed what was to be read next
        self.done = False

    def trimmed(self, error: StreamRangeExpiredError) -> None:
        """The stream refused to read on from here; reading restarts at its trim horizon."""
        self.trim = self.trim or error

    def take(self, records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]] | LostPart]:
        """The lost part a trim left before ``records`` (a GetRecords page), then the page's new
        records of the range in Lambda's format."""
        if not records:
            return
        new = [record for record in records if self._is_new(_sequence_number(record))]
        if self.trim is not None:
            error, self.trim = self.trim, None
            if not self._still_held(_sequence_number(records[0])):
                first_held = _sequence_number(new[0]) if new else None  # None: past the range's end
                yield LostPart(self.last, first_held, error.code, str(error))
        if new:
            yield [lambda_record(record, self.failed.stream_arn) for record in new]
        last = int(_sequence_number(records[-1]))
        self.last = str(last if self.last is None else max(last, int(self.last)))
        self.done = int(self.last) >= int(self.failed.end)

    def _is_new(self, sequence_number: str) -> bool:
        """In the range and not read yet (reading from a trim horizon may meet records read before)."""
        return self.failed.holds(sequence_number) and (
            self.last is None or int(sequence_number) > int(self.last)
        )

    def _still_held(self, oldest: str) -> bool:
        """Whether the trim horizon ``oldest`` is no later than where reading stood (the range's start,
        or the last record read): then the refusal lost nothing."""
        return int(oldest) <= int(self.failed.start if self.last is None else self.last)


class StreamReader(AwsAdapter):
    """Reads one shard range of a DynamoDB stream (``client=None`` builds one lazily)."""

    service = "dynamodbstreams"

    def __init__(self, *, client: Any = None, max_empty_pages: int = MAX_EMPTY_PAGES) -> None:
        super().__init__(client=client)
        self.max_empty_pages = max_empty_pages

    def _call(self, operation: str, resource: str, **kwargs: Any) -> Any:
        return self._request(operation, resource, **kwargs)

    def _iterator(self, failed: FailedRange, resource: str, **position: str) -> str | None:
        response = self._call(
            "get_shard_iterator", resource, StreamArn=failed.stream_arn, ShardId=failed.shard_id, **position
        )
        iterator = response.get("ShardIterator")
        return str(iterator) if iterator else None

    def _resume(self, read: _RangeRead, resource: str) -> str | None:
        """An iterator where reading stands: the range's start, or just after the last record read;
        the shard's trim horizon where the stream no longer holds that point."""
        if read.trim is None:
            position = {"ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": read.failed.start}
            if read.last is not None:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": read.last}
            try:
                return self._iterator(read.failed, resource, **position)
            except StreamRangeExpiredError as exc:
                if exc.code != _TRIMMED:
                    raise
                read.trimmed(exc)
        # The oldest record the shard still holds; refused too, the range is lost as a whole.
        return self._iterator(read.failed, resource, ShardIteratorType="TRIM_HORIZON")

    def pages(self, failed: FailedRange) -> Iterator[list[dict[str, Any]] | LostPart]:
        """The range's records in Lambda's format, a GetRecords page at a time, and a ``LostPart``
        for each part of it the stream no longer held (before the records that follow it).

        Raises ``StreamRangeExpiredError`` when the stream refuses even its trim horizon (or
        iterators keep expiring), and ``StreamRangeIncompleteError`` when the shard ends before
        the range does.
        """
        resource = f"{failed.stream_arn}/{failed.shard_id}"
        read = _RangeRead(failed)
        iterator, empty, restarts = self._resume(read, resource), 0, 0
        while iterator:
            try:
                response = self._call(
                    "get_records", resource, ShardIterator=iterator, Limit=GET_RECORDS_LIMIT
                )
            except StreamRangeExpiredError as exc:
                # An iterator lives 15 minutes, and the stream may trim past one being read: a fresh
                # iterator from where reading stands (or from the trim horizon) is not a loss.
                if restarts >= MAX_ITERATOR_REFRESHES:
                    raise
                restarts += 1
                if exc.code == _TRIMMED:
                    read.trimmed(exc)
                iterator = self._resume(read, resource)
                continue
            records = response.get("Records", [])
            yield from read.take(records)
            if read.done:
                return
            empty = 0 if records else empty + 1
            if empty >= self.max_empty_pages:
                break
            iterator = response.get("NextShardIterator")
        raise StreamRangeIncompleteError(f"{resource}: the shard ended before sequence number {failed.end}")

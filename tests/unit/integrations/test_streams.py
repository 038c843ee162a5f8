"""Reading a failed range back from DynamoDB Streams (integrations.streams)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from changelake.exceptions import (
    StreamRangeExpiredError,
    StreamRangeIncompleteError,
)
from changelake.formats.lambda_events import FailedRange
from changelake.integrations.streams import LostPart, StreamReader

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-11-22T00:00:00.000"


# ------------------------------------------------------------------ reading a range


class ScriptedStreams:
    """A shard served as fixed GetRecords pages of sequence numbers; ``errors`` raise in order.

    Iterators are ``"<page>:<offset>"``; AT/AFTER_SEQUENCE_NUMBER position them like DynamoDB,
    and refuse (TrimmedDataAccessException) a position before ``trim_horizon``, the first
    sequence number the stream still holds, where TRIM_HORIZON starts.
    """

    def __init__(
        self, pages: list[list[int]], errors: list[tuple[str, str]] | None = None, trim_horizon: int = 0
    ) -> None:
        self.pages = pages
        self.errors = list(errors or [])
        self.trim_horizon = trim_horizon
        self.iterators: list[dict[str, Any]] = []

    def _maybe_fail(self, operation: str) -> None:
        if self.errors and self.errors[0][0] == operation:
            code = self.errors.pop(0)[1]
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        self._maybe_fail("get_shard_iterator")
        self.iterators.append(kwargs)
        if kwargs["ShardIteratorType"] == "TRIM_HORIZON":
            held = [
                f"{page}:{offset}"
                for page, numbers in enumerate(self.pages)
                for offset, number in enumerate(numbers)
                if number >= self.trim_horizon
            ]
            return {"ShardIterator": held[0] if held else "0:0"}
        wanted = int(kwargs["SequenceNumber"])
        for page, numbers in enumerate(self.pages):
            if wanted in numbers and wanted >= self.trim_horizon:
                offset = numbers.index(wanted) + (kwargs["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER")
                return {"ShardIterator": f"{page}:{offset}"}
        raise ClientError(
            {"Error": {"Code": "TrimmedDataAccessException", "Message": "x"}}, "GetShardIterator"
        )

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self._maybe_fail("get_records")
        page, offset = (int(part) for part in ShardIterator.split(":"))
        numbers = self.pages[page][offset:] if page < len(self.pages) else []
        records = [
            {"eventID": str(n), "eventName": "INSERT", "dynamodb": {"SequenceNumber": str(n), "Keys": {}}}
            for n in numbers
        ]
        return {"Records": records, "NextShardIterator": f"{page + 1}:0"}


class FailsOnSecondRead(ScriptedStreams):
    """The second GetRecords fails with ``code``; with ``trim_to``, the stream has trimmed to there."""

    def __init__(self, pages: list[list[int]], code: str, *, trim_to: int = 0) -> None:
        super().__init__(pages)
        self.code, self.trim_to, self.calls = code, trim_to, 0

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 2:
            self.trim_horizon = self.trim_to
            raise ClientError({"Error": {"Code": self.code, "Message": "injected"}}, "GetRecords")
        return super().get_records(ShardIterator, Limit)


def read_with_losses(client: ScriptedStreams, start: str, end: str) -> tuple[list[str], list[LostPart]]:
    """The sequence numbers read of range ``start``..``end``, and the parts reported lost."""
    numbers: list[str] = []
    lost: list[LostPart] = []
    for page in StreamReader(client=client).pages(FailedRange(ARN, "shard-1", start, end, "orders")):
        if isinstance(page, LostPart):
            lost.append(page)
        else:
            numbers.extend(record["dynamodb"]["SequenceNumber"] for record in page)
    return numbers, lost


def read(client: ScriptedStreams, start: str, end: str) -> list[str]:
    numbers, lost = read_with_losses(client, start, end)
    assert lost == []
    return numbers


def test_a_range_is_read_across_pages_and_cut_at_its_end() -> None:
    # GIVEN a shard whose range 98..1001 spans pages (and an empty page in between)
    client = ScriptedStreams([[98, 99], [], [100, 1001, 1002], [1003]])

    # WHEN / THEN exactly the range is read, from an iterator at its start
    assert read(client, "98", "1001") == ["98", "99", "100", "1001"]
    assert client.iterators == [
        {
            "StreamArn": ARN,
            "ShardId": "shard-1",
            "ShardIteratorType": "AT_SEQUENCE_NUMBER",
            "SequenceNumber": "98",
        }
    ]


def test_a_shard_that_ends_before_the_range_is_incomplete_not_lost() -> None:
    with pytest.raises(StreamRangeIncompleteError):
        read(ScriptedStreams([[5, 6]]), "5", "9")


def test_a_range_whose_start_is_trimmed_is_read_on_from_the_trim_horizon_and_the_gap_reported() -> None:
    # GIVEN range 5..9 of which the stream no longer holds 5 and 6 (it holds 7 on)
    client = ScriptedStreams([[5, 6, 7], [8, 9, 10]], trim_horizon=7)

    # WHEN read
    numbers, lost = read_with_losses(client, "5", "9")

    # THEN what the stream still holds is read, and the part before it reported with its bounds
    assert numbers == ["7", "8", "9"]
    (part,) = lost
    assert (part.after, part.first_held, part.error_code) == (None, "7", "TrimmedDataAccessException")
    assert [iterator["ShardIteratorType"] for iterator in client.iterators] == [
        "AT_SEQUENCE_NUMBER",
        "TRIM_HORIZON",
    ]


def test_a_range_trimmed_past_its_end_is_lost_as_a_whole() -> None:
    # GIVEN range 5..6, with the stream holding only records after it
    client = ScriptedStreams([[5, 6], [9]], trim_horizon=9)

    # WHEN read THEN nothing is read and the whole range is the lost part
    numbers, lost = read_with_losses(client, "5", "6")
    assert numbers == []
    assert [(part.after, part.first_held, part.is_whole_range) for part in lost] == [(None, None, True)]


def test_a_trim_past_the_reader_mid_range_loses_only_what_it_had_not_read() -> None:
    # GIVEN range 5..10, and a stream that trims everything before 9 once the first page is read
    client = FailsOnSecondRead([[5, 6], [7, 8], [9, 10]], "TrimmedDataAccessException", trim_to=9)

    # WHEN read THEN 5 and 6 were read, 9 and 10 too, and what lies after 6 and before 9 is lost
    numbers, lost = read_with_losses(client, "5", "10")
    assert numbers == ["5", "6", "9", "10"]
    assert [(part.after, part.first_held) for part in lost] == [("6", "9")]


@pytest.mark.parametrize("operation", ["get_shard_iterator", "get_records"])
def test_a_trim_the_trim_horizon_contradicts_loses_nothing(operation: str) -> None:
    # GIVEN a refusal as trimmed, while the trim horizon still starts at the range
    client = ScriptedStreams([[5, 6]], errors=[(operation, "TrimmedDataAccessException")])
    # WHEN read THEN the whole range is read and nothing reported lost
    assert read(client, "5", "6") == ["5", "6"]


def test_a_stream_that_refuses_even_its_trim_horizon_has_lost_the_range() -> None:
    client = ScriptedStreams(
        [[5, 6]],
        errors=[("get_shard_iterator", "TrimmedDataAccessException")] * 2,
    )
    with pytest.raises(StreamRangeExpiredError):
        read(client, "5", "6")


def test_lost_part_bounds_say_from_or_after_and_before_or_through() -> None:
    failed = FailedRange(ARN, "shard-1", "100", "200", "orders")
    start = LostPart(None, "150", "TrimmedDataAccessException", "x").bounds(failed)
    middle = LostPart("120", None, "TrimmedDataAccessException", "x").bounds(failed)
    assert start == {
        "from_sequence_number": "100",
        "after_sequence_number": None,
        "before_sequence_number": "150",
        "through_sequence_number": None,
        "description": "sequence numbers from 100 (the range's start) up to, not including, 150 "
        "(the first record the stream still holds)",
    }
    assert (middle["from_sequence_number"], middle["after_sequence_number"]) == (None, "120")
    assert (middle["before_sequence_number"], middle["through_sequence_number"]) == (None, "200")
    assert middle["description"] == "sequence numbers after 120 through 200 (the range's end)"


def test_an_expired_iterator_is_refreshed_after_the_last_record_read() -> None:
    # GIVEN an iterator that expires after the first page was read
    client = FailsOnSecondRead([[5, 6], [7, 8]], "ExpiredIteratorException")

    # WHEN the range is read THEN a fresh iterator continues after 6: nothing missed, nothing repeated
    assert read(client, "5", "7") == ["5", "6", "7"]
    assert client.iterators[1]["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert client.iterators[1]["SequenceNumber"] == "6"

"""Random streams of changes for the property tests, and the model of each table they imply.

A scenario is a list of puts and deletes on a few keys of a few tables over two days; played in
order against a model of each table it becomes DynamoDB stream records exactly as Lambda gets
them: INSERT for a new key, MODIFY (with the old image) for an existing one, REMOVE for a delete
of an existing key (a delete of a missing key changes nothing and has no record), so deletes and
re-inserts of one key follow each other. Some items are oversized (claim checks), some poison
(an unknown DynamoDB type tag: quarantine).
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from hypothesis import strategies as st

from changelake_testing.stream_records import stream_record

TABLES = ("orders", "users", "carts")
HOURS = 48  # two UTC days
START = datetime(2026, 11, 27, tzinfo=UTC).timestamp()
DAYS = tuple(date(2026, 11, 27 + day) for day in range(HOURS // 24))
#: Random bytes of an oversized item: as base64 about 373 KB, under DynamoDB's 400 KB item limit
#: and, incompressible, over SQS's 256 KB message limit even gzipped: a claim check.
OVERSIZED_BYTES = 280_000


@dataclass(frozen=True)
class Change:
    table: int
    key: int
    hour: int
    delete: bool
    oversized: bool
    poison: bool


@dataclass(frozen=True)
class Scenario:
    tables: tuple[str, ...]
    changes: tuple[Change, ...]
    request_fault_rate: float
    crash_rate: float
    fault_seed: int
    delivery_seed: int


def _rare() -> st.SearchStrategy[bool]:
    return st.integers(0, 24).map(lambda n: n == 0)


changes = st.builds(
    Change,
    table=st.integers(0, len(TABLES) - 1),
    key=st.integers(0, 4),
    hour=st.integers(0, HOURS - 1),
    delete=st.integers(0, 3).map(lambda n: n == 0),
    oversized=_rare(),
    poison=_rare(),
)

scenarios = st.builds(
    Scenario,
    tables=st.just(TABLES),
    changes=st.lists(changes, min_size=10, max_size=40).map(tuple),
    request_fault_rate=st.sampled_from([0.0, 0.05, 0.1, 0.15]),
    crash_rate=st.sampled_from([0.0, 0.1, 0.2]),
    fault_seed=st.integers(0, 2**32 - 1),
    delivery_seed=st.integers(0, 2**32 - 1),
)


@dataclass
class Stream:
    """The stream records of each table, in stream order, and the poison records among them."""

    records: dict[str, list[dict[str, Any]]]
    poison_ids: set[str]

    def event_ids(self) -> set[str]:
        return {record["eventID"] for records in self.records.values() for record in records}

    def days(self) -> set[tuple[str, str]]:
        """(table, YYYY-MM-DD) of every record, the partitions compaction must cover."""
        return {
            (table, day_of(record).isoformat())
            for table, records in self.records.items()
            for record in records
        }

    def stored(self, table: str) -> list[dict[str, Any]]:
        """The table's records that reach raw/ (all but the poison ones), in stream order."""
        return [record for record in self.records.get(table, []) if record["eventID"] not in self.poison_ids]


@dataclass(frozen=True)
class ModelItem:
    """One item of the model table: its value as plain JSON (exact numbers), and its last change."""

    item: dict[str, Any]
    event_id: str


def model_table(stream: Stream, table: str, day: date) -> dict[str, ModelItem]:
    """The table at the end of ``day`` by key, as the lake knows it: the stored records up to that
    day applied in stream order, a REMOVE taking the key away. Independent of the snapshot code."""
    deserialize = TypeDeserializer().deserialize
    items: dict[str, ModelItem] = {}
    for record in stream.stored(table):
        if day_of(record) > day:
            continue
        key = record["dynamodb"]["Keys"]["pk"]["S"]
        new_image = record["dynamodb"].get("NewImage")
        if new_image is None:
            items.pop(key, None)
        else:
            plain = {name: deserialize(value) for name, value in new_image.items()}
            items[key] = ModelItem(plain, record["eventID"])
    return items


def day_of(record: dict[str, Any]) -> date:
    return datetime.fromtimestamp(record["dynamodb"]["ApproximateCreationDateTime"], UTC).date()


def _image(key: str, change: Change, version: int) -> dict[str, Any]:
    image: dict[str, Any] = {"pk": {"S": key}, "version": {"N": str(version)}, "status": {"S": "open"}}
    if change.oversized:
        blob = random.Random(f"{key}/{version}").randbytes(OVERSIZED_BYTES)
        image["blob"] = {"S": base64.b64encode(blob).decode()}
    if change.poison:
        image["status"] = {"X": "unknown tag"}
    return image


def stream_of(scenario: Scenario) -> Stream:
    """Play the scenario's changes, in event-time order per table, against a model of each table."""
    stream = Stream(records={}, poison_ids=set())
    ordered = sorted(enumerate(scenario.changes), key=lambda pair: (pair[1].table, pair[1].hour, pair[0]))
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for position, (index, change) in enumerate(ordered):
        table = scenario.tables[change.table]
        key = f"customer#{change.key}"
        old = items.get((table, key))
        if change.delete and old is None:
            continue
        new = None if change.delete else _image(key, change, index)
        record = stream_record(
            table=table,
            event_name="REMOVE" if new is None else "MODIFY" if old is not None else "INSERT",
            sequence_number=10**20 + position,
            created=START + change.hour * 3600 + position,
            keys={"pk": {"S": key}},
            new_image=new,
            old_image=old,
            event_id=f"{table}-{position}",
        )
        stream.records.setdefault(table, []).append(record)
        if any(image is not None and "X" in image["status"] for image in (new, old)):
            stream.poison_ids.add(record["eventID"])
        if new is None:
            items.pop((table, key))
        else:
            items[(table, key)] = new
    return stream

"""Parquet snapshots on a moto server: read back with DuckDB and with pyarrow, equal to the JSON days."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from changelake.exceptions import PreconditionFailedError, SnapshotError
from changelake.integrations.s3 import S3Store
from changelake.snapshot.builder import DayResult
from changelake.snapshot.columns import ColumnLayout
from changelake.snapshot.manifest import DayManifest
from changelake.snapshot.parquet import ParquetSnapshots
from changelake.snapshot.service import SnapshotSummary
from tests.conftest import Stack
from tests.functional.fakes import WrappingClient
from tests.functional.snapshot.support import builder, put_raw, read_snapshot
from tests.snapshot_support import BIG, FRACTION, change

D1, D2 = date(2026, 11, 21), date(2026, 11, 22)
SEQ = 10**20
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "sk": {"type": "string"},
        "price": {"type": "integer", "minimum": 0, "maximum": 10**38 - 1},
        "ratio": {"type": "number", "multipleOf": 1e-37, "minimum": -1, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "nested": {"type": "object"},
        "v": {"type": "string"},
        "paid": {"type": "boolean"},
    },
}


def parquet(
    stack: Stack, tmp_path: Path, schema: dict[str, Any] = SCHEMA, client: Any = None, **options: Any
) -> ParquetSnapshots:
    layouts = {"orders": ColumnLayout.from_schema(schema)}
    store = S3Store(stack.bucket, client=client or stack.s3)
    return ParquetSnapshots(store, layouts, scratch_dir=tmp_path, **options)


def parquet_keys(stack: Stack, day: date, table: str = "orders") -> list[str]:
    folder = f"snapshot-parquet/{table}/dt={day.isoformat()}/"
    return [key for key in stack.keys(folder) if key.endswith(".parquet")]


def download(stack: Stack, day: date, tmp_path: Path) -> list[Path]:
    paths = []
    for key in parquet_keys(stack, day):
        paths.append(tmp_path / "read" / key)
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        paths[-1].write_bytes(stack.read(key))
    return paths


def as_item(row: dict[str, Any]) -> dict[str, Any]:
    """The item a Parquet row holds: its typed columns (JSON text parsed exactly) and item_rest (DuckDB
    adds the partition column dt from the path)."""
    item: dict[str, Any] = {}
    for name, value in row.items():
        if name in ("keys", "event_id", "event_time", "sequence_number", "item_rest", "dt") or value is None:
            continue
        nested = name in ("tags", "nested")
        item[name] = json.loads(value, parse_float=Decimal, parse_int=Decimal) if nested else value
    if row["item_rest"] is not None:
        item |= json.loads(row["item_rest"], parse_float=Decimal, parse_int=Decimal)
    return item


def duckdb_rows(paths: list[Path]) -> list[dict[str, Any]]:
    connection = duckdb.connect()
    relation = connection.execute("SELECT * FROM read_parquet(?)", [[str(path) for path in paths]])
    names = [column[0] for column in relation.description]
    return [dict(zip(names, values, strict=True)) for values in relation.fetchall()]


def pyarrow_rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [row for path in paths for row in pq.read_table(path).to_pylist()]


def assert_parquet_equals_json(stack: Stack, day: date, tmp_path: Path) -> None:
    """Both readers give every item of the JSON day, value for value, in key order."""
    expected = read_snapshot(stack, day)
    paths = download(stack, day, tmp_path)
    for rows in (duckdb_rows(paths), pyarrow_rows(paths)):
        assert [json.loads(row["keys"]) for row in rows] == [dict(key) for key in expected]
        for row, document in zip(rows, expected.values(), strict=True):
            assert as_item(row) == document["item"]
            line_fields = [row[name] for name in ("event_id", "event_time", "sequence_number")]
            assert line_fields == [document[name] for name in ("event_id", "event_time", "sequence_number")]


def two_days() -> list[Any]:
    return [
        change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT", v=1, extra="not in the schema"),
        change("b", "2026-11-21T09:00:00+00:00", SEQ + 2, name="INSERT", v=1),
        change("a", "2026-11-22T01:00:00+00:00", 10**39 + 3, v=2),
        change("b", "2026-11-22T02:00:00+00:00", 10**39 + 4, name="REMOVE"),
        change("c", "2026-11-22T03:00:00+00:00", 10**39 + 5, name="INSERT"),
    ]


def test_each_day_as_parquet_equals_its_json_snapshot_in_duckdb_and_pyarrow(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN two days of changes of a table with a JSON Schema (a 38-digit integer, a 37-decimal fraction)
    put_raw(stack, two_days())

    # WHEN the snapshot is brought up to day 2
    chain = builder(stack, tmp_path, derived=[parquet(stack, tmp_path)]).bring_up_to_date("orders", D2)

    # THEN each day has its Parquet, equal to the JSON day value for value in both readers
    assert [(day.day, _parquet_status(day)) for day in chain.days] == [
        (D1, "built"),
        (D2, "built"),
    ]
    for day in (D1, D2):
        assert_parquet_equals_json(stack, day, tmp_path / day.isoformat())
    summary = SnapshotSummary("manual")
    summary.add(chain)
    assert summary.metrics()["ParquetDaysBuilt"] == 2
    # AND the numbers are typed with the declared digits and read back exactly
    paths = download(stack, D1, tmp_path / "types")
    types = dict(
        duckdb.connect().execute("SELECT name, type FROM parquet_schema(?)", [str(paths[0])]).fetchall()
    )
    schema = pq.read_schema(paths[0])
    assert str(schema.field("price").type) == "decimal128(38, 0)"
    assert str(schema.field("ratio").type) == "decimal128(38, 37)"
    assert types["paid"] == "BOOLEAN"
    row = duckdb_rows(paths)[0]
    assert (str(row["price"]), str(row["ratio"])) == (BIG, FRACTION)
    assert json.loads(row["item_rest"]) == {"extra": "not in the schema"}


def test_a_day_past_the_source_size_is_split_into_files_that_together_equal_it(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN a writer that starts a new file after every row's texts
    put_raw(stack, two_days()[:2])
    one_row_each = parquet(stack, tmp_path, source_bytes=1)

    # WHEN day 1 is built
    builder(stack, tmp_path, derived=[one_row_each]).bring_up_to_date("orders", D1)

    # THEN it has one file per item, which read together equal the JSON day in key order
    assert len(parquet_keys(stack, D1)) == 2
    assert_parquet_equals_json(stack, D1, tmp_path)


def test_a_table_without_a_schema_gets_no_parquet(stack: Stack, tmp_path: Path) -> None:
    # GIVEN changes of a table with no JSON Schema
    put_raw(stack, [change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT", table="plain")])

    # WHEN its snapshot is built with Parquet on for the tables that have one
    chain = builder(stack, tmp_path, derived=[parquet(stack, tmp_path)]).bring_up_to_date("plain", D1)

    # THEN its JSON day exists and no Parquet at all
    assert [(day.status, day.derived) for day in chain.days] == [("built", {})]
    assert chain.complete
    assert stack.keys("snapshot-parquet/") == []


def test_a_value_violating_its_declared_type_fails_the_parquet_day_only(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a schema whose price has 37 digits at most, and an item of day 1 with 38
    narrow = {
        **SCHEMA,
        "properties": {
            **SCHEMA["properties"],
            "price": {"type": "integer", "minimum": 0, "maximum": 10**37 - 1},
        },
    }
    put_raw(stack, two_days())

    # WHEN the snapshot is brought up to day 2
    chain = builder(stack, tmp_path, derived=[parquet(stack, tmp_path, narrow)]).bring_up_to_date(
        "orders", D2
    )

    # THEN no day has Parquet, each failure names the JSON file, the line, the attribute and the type
    assert stack.keys("snapshot-parquet/") == []
    assert not chain.complete
    assert [day for day, _ in chain.derived_failed] == [D1, D2]
    error = chain.derived_failed[0][1]
    assert error.startswith(
        f"orders/dt=2026-11-21 (parquet): s3://{stack.bucket}/snapshot/orders/dt=2026-11-21/part-"
    )
    assert error.endswith(f".jsonl.gz line 1: attribute 'price': {BIG} does not fit DECIMAL(37,0)")
    # AND the JSON days are published all the same (nothing rounded, nothing lost)
    assert [day.status for day in chain.days] == ["built", "built"]
    assert len(read_snapshot(stack, D2)) == 2
    # AND the run reports both days as failed and raises (Lambda retries, SnapshotErrorsAlarm fires)
    summary = SnapshotSummary("manual")
    summary.add(chain)
    assert [(failure["dt"], failure["error"]) for failure in summary.failed] == [
        ("2026-11-21", chain.derived_failed[0][1]),
        ("2026-11-22", chain.derived_failed[1][1]),
    ]
    with pytest.raises(SnapshotError):
        summary.raise_for_failures()


class FailingManifestPut(WrappingClient):
    """PutObject of a Parquet manifest fails (a run that dies just before its commit)."""

    def put_object(self, **kwargs: Any) -> Any:
        if kwargs["Key"].startswith("snapshot-parquet/") and kwargs["Key"].endswith("_manifest.json"):
            raise PreconditionFailedError("injected", "PreconditionFailed")
        return self.real.put_object(**kwargs)


def test_a_rerun_replaces_a_parquet_day_whole_and_an_interrupted_one_leaves_the_old(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 built with its Parquet
    put_raw(stack, two_days()[:2])
    builder(stack, tmp_path, derived=[parquet(stack, tmp_path)]).bring_up_to_date("orders", D1)
    first = parquet_keys(stack, D1)

    # WHEN the schema changes (a new column) and a run dies before committing the new Parquet
    wider = {**SCHEMA, "properties": {**SCHEMA["properties"], "extra": {"type": "string"}}}
    failing = FailingManifestPut(stack.s3)
    with pytest.raises(PreconditionFailedError):
        parquet(stack, tmp_path, wider, client=failing).refresh(_day_manifest(stack, D1))

    # THEN the previous Parquet day is there whole, and nothing of the new one
    assert parquet_keys(stack, D1) == first
    # WHEN the next run checks the day
    chain = builder(stack, tmp_path, derived=[parquet(stack, tmp_path, wider)]).bring_up_to_date("orders", D1)

    # THEN the JSON day is unchanged, its Parquet replaced by exactly one new generation, read back equal
    assert [(day.status, _parquet_status(day)) for day in chain.days] == [("unchanged", "built")]
    second = parquet_keys(stack, D1)
    assert len(second) == 1
    assert second != first
    assert_parquet_equals_json(stack, D1, tmp_path / "after")
    # AND a run with nothing new writes nothing
    again = builder(stack, tmp_path, derived=[parquet(stack, tmp_path, wider)]).bring_up_to_date("orders", D1)
    assert [(day.status, _parquet_status(day)) for day in again.days] == [("unchanged", "unchanged")]
    assert parquet_keys(stack, D1) == second


def _day_manifest(stack: Stack, day: date) -> DayManifest:
    manifest = DayManifest.from_body(
        json.loads(stack.read(f"snapshot/orders/dt={day.isoformat()}/_manifest.json"))
    )
    assert manifest is not None
    return manifest


class ScratchFull(ParquetSnapshots):
    """A Parquet writer whose scratch disk is full: an ``OSError``, not one of our own exceptions."""

    def refresh(self, manifest: DayManifest) -> Any:
        raise OSError(28, "No space left on device")


def test_a_foreign_parquet_failure_stays_the_parquets_own_and_the_json_days_go_on(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN two days of changes and a Parquet writer that fails with an OSError (a full /tmp)
    put_raw(stack, two_days())
    full = ScratchFull(S3Store(stack.bucket, client=stack.s3), {"orders": ColumnLayout.from_schema(SCHEMA)})

    # WHEN the snapshot is brought up to day 2
    chain = builder(stack, tmp_path, derived=[full]).bring_up_to_date("orders", D2)

    # THEN both JSON days are published, and the failure is reported per day (the run then raises)
    assert [day.status for day in chain.days] == ["built", "built"]
    assert [day for day, _ in chain.derived_failed] == [D1, D2]
    assert (
        chain.derived_failed[0][1]
        == "orders/dt=2026-11-21 (parquet): OSError: [Errno 28] No space left on device"
    )
    assert not chain.complete


def test_no_time_left_for_a_days_parquet_stops_the_chain_for_the_hand_off(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN two days of changes, Parquet on, and time for one build only
    put_raw(stack, two_days())
    budget = iter([True])

    # WHEN the snapshot is brought up to day 2
    chain = builder(stack, tmp_path, derived=[parquet(stack, tmp_path)]).bring_up_to_date(
        "orders", D2, may_build=lambda: next(budget, False)
    )

    # THEN day 1's JSON is built, and the chain stops before its Parquet (a build of its own) for the
    # hand-off, instead of running past the deadline
    assert chain.stopped
    assert not chain.complete
    assert [day.status for day in chain.days] == ["built"]
    assert stack.keys("snapshot-parquet/") == []

    # AND the handed-off run, with time, derives day 1's Parquet and builds the rest
    again = builder(stack, tmp_path, derived=[parquet(stack, tmp_path)]).bring_up_to_date("orders", D2)
    assert again.complete
    assert [day.status for day in again.days] == ["unchanged", "built"]
    assert (len(parquet_keys(stack, D1)), len(parquet_keys(stack, D2))) == (1, 1)


def _parquet_status(day: DayResult) -> str | None:
    copy = day.derived.get("parquet")
    return None if copy is None else copy.status

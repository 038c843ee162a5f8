"""The query layer on a lake the pipeline wrote (consumer -> SQS -> aggregator -> raw/ -> compaction):
DuckDB's views and the Athena views (transpiled to DuckDB) give the change log's state, value for value."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from analytics.athena import statements
from analytics.duck import PREVIEW_QUERY, connect, lines_select
from analytics.lake import Lake, LakeTable
from analytics.views import as_of_predicate, to_duckdb
from changelake.compaction.compactor import Compactor
from changelake.integrations.s3 import S3Store
from changelake_local.pipeline import duckdb_preview
from changelake_testing.stream_records import realistic_item, stream_record
from tests.conftest import FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import sqs_event

TABLE = "orders"
DAY_ONE = datetime(2026, 11, 22, 10, tzinfo=UTC)
BIG = "10042665073355614611506793267897562616"  # 38 digits: a DOUBLE would round it
PRECISE = "1234567890123456789012345678.9012345678"  # 38 digits with a fraction
#: 40-digit sequence numbers, and one of 39 digits that sorts after them as text but before as a number
SEQUENCE_BASE = 4 * 10**39
SHORT_SEQUENCE = 10**39 - 1


def _plan() -> Iterator[tuple[str, str, int, datetime]]:
    """(item, event name, sequence number, time) of a small history across two days and five hours."""
    yield "a", "INSERT", SEQUENCE_BASE + 1, DAY_ONE
    yield "a", "MODIFY", SEQUENCE_BASE + 2, DAY_ONE + timedelta(minutes=30)
    yield "b", "INSERT", SHORT_SEQUENCE, DAY_ONE + timedelta(hours=1)
    yield "b", "MODIFY", SEQUENCE_BASE + 3, DAY_ONE + timedelta(hours=1, seconds=1)
    yield "c", "INSERT", SEQUENCE_BASE + 4, DAY_ONE + timedelta(hours=2)
    yield "c", "REMOVE", SEQUENCE_BASE + 5, DAY_ONE + timedelta(hours=3)
    yield "a", "MODIFY", SEQUENCE_BASE + 6, DAY_ONE + timedelta(days=1)
    # a later change whose approximate time is earlier than its predecessor's (clock skew)
    yield "b", "MODIFY", SEQUENCE_BASE + 8, DAY_ONE + timedelta(days=1, hours=2)
    yield "b", "MODIFY", SEQUENCE_BASE + 9, DAY_ONE + timedelta(days=1, hours=1)
    yield "c", "INSERT", SEQUENCE_BASE + 10, DAY_ONE + timedelta(days=1, hours=3)
    yield "d", "INSERT", SEQUENCE_BASE + 11, DAY_ONE + timedelta(days=1, hours=3)
    yield "d", "REMOVE", SEQUENCE_BASE + 12, DAY_ONE + timedelta(days=1, hours=4)


def _records() -> list[dict[str, Any]]:
    rng = random.Random(14)
    records: list[dict[str, Any]] = []
    images: dict[str, dict[str, Any] | None] = {}
    for item, event_name, sequence, at in _plan():
        keys = {"pk": {"S": f"customer#{item}"}, "sk": {"S": "order#1"}}
        image = {**realistic_item(rng, f"customer#{item}", 300), **keys, "big": {"N": BIG}}
        image["precise"] = {"N": PRECISE}
        image["version"] = {"S": str(sequence)}
        new_image = None if event_name == "REMOVE" else image
        records.append(
            stream_record(
                table=TABLE,
                event_name=event_name,
                sequence_number=sequence,
                created=at.timestamp(),
                keys=keys,
                new_image=new_image,
                old_image=images.get(item),
            )
        )
        images[item] = new_image
    return records


def _exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def _reference_state(
    lines: list[dict[str, Any]], instant: str | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """The change log's state (docs/contracts.md): per item, its highest sequence number up to ``instant``."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        if instant is not None and line["event_time"] > instant:
            continue
        identity = (line["keys"]["pk"], line["keys"]["sk"])
        if identity not in latest or int(line["sequence_number"]) > int(latest[identity]["sequence_number"]):
            latest[identity] = line
    return {identity: line for identity, line in latest.items() if line["event_name"] != "REMOVE"}


@pytest.fixture
def lake(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, tmp_path: Path
) -> tuple[Path, list[dict[str, Any]]]:
    """The pipeline's lake on local disk: day one compacted (and still in raw/), day two raw only,
    and the snapshot layer's days one and two."""
    consumer = load_handler("stream_consumer", stack.environment)
    aggregator = load_handler("aggregator", stack.environment)
    consumer.lambda_handler({"Records": _records()}, lambda_context)
    assert aggregator.lambda_handler(sqs_event(stack.drain()), lambda_context) == {"batchItemFailures": []}
    compactor = Compactor(S3Store(stack.bucket, client=stack.s3))
    for partition in compactor.partitions_of_day(TABLE, DAY_ONE.date()):
        compactor.compact(partition)
    snapshot = load_handler("snapshot", stack.environment)
    last_day = (DAY_ONE + timedelta(days=1)).date().isoformat()
    snapshot.lambda_handler({"table": TABLE, "dt": last_day}, lambda_context)
    lines = []
    for key in stack.keys(""):
        target = tmp_path / "lake" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(stack.read(key))
        if key.startswith("raw/"):
            lines += [_exact(line) for line in gzip.decompress(stack.read(key)).decode().splitlines()]
    assert any(key.startswith("compacted/") for key in stack.keys(""))
    assert any(key.startswith(f"snapshot/{TABLE}/dt={last_day}/") for key in stack.keys(""))
    assert not stack.keys("quarantine/")
    return tmp_path / "lake", lines


def _end_of(day: date) -> str:
    return f"{day.isoformat()}T23:59:59.999Z"


def _state_by_key(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Rows of (pk, sk, record text) as the reference's shape."""
    return {(pk, sk): _exact(record) for pk, sk, record in rows}


def test_duckdb_views_give_the_change_logs_state_exactly(lake: tuple[Path, list[dict[str, Any]]]) -> None:
    # GIVEN the pipeline's lake (day one compacted and in raw/, day two only in raw/)
    lake_dir, lines = lake

    # WHEN DuckDB's views are asked for every change, the latest state and the state at each day's end
    with connect(lake_dir) as duck:
        changes = duck.execute("SELECT count(*), count(DISTINCT event_id) FROM changes").fetchone()
        latest = duck.execute("SELECT keys::VARCHAR, record::VARCHAR FROM latest").fetchall()
        days = {
            day: duck.execute(
                "SELECT keys::VARCHAR, record::VARCHAR FROM state_at(?)", [_end_of(day)]
            ).fetchall()
            for day in (DAY_ONE.date(), DAY_ONE.date() + timedelta(days=1))
        }

    # THEN every change is there once, and the states equal the change log's, value for value
    assert changes == (len(_plan_list()), len(_plan_list()))
    assert _by_keys(latest) == _reference_state(lines)
    for day, rows in days.items():
        assert _by_keys(rows) == _reference_state(lines, _end_of(day))
    # AND the 38-digit numbers and the 40-digit sequence numbers are there digit for digit
    record = next(iter(_by_keys(latest).values()))
    assert record["new_image"]["big"] == Decimal(BIG)
    assert record["new_image"]["precise"] == Decimal(PRECISE)
    assert len(record["sequence_number"]) == 40


def _plan_list() -> list[tuple[str, str, int, datetime]]:
    return list(_plan())


def _by_keys(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], dict[str, Any]]:
    state = {}
    for keys, record in rows:
        parsed = json.loads(keys)
        state[(parsed["pk"], parsed["sk"])] = _exact(record)
    return state


def _athena_on_duckdb(lake_dir: Path, table: LakeTable) -> Any:
    """DuckDB with the Athena statements' views, transpiled; the lines tables read the same files."""
    import duckdb

    lake = Lake("changelake-test-data")
    duck = duckdb.connect()
    duck.execute(f"CREATE SCHEMA {lake.database}")
    for layer, hourly in (("raw", True), ("compacted", True), ("snapshot", False)):
        select = lines_select(lake_dir, layer, hourly=hourly, table=table.name)
        duck.execute(f"CREATE VIEW {lake.database}.{table.athena_name}_{layer}_lines AS {select}")
    for statement in statements(lake, [table]):
        if statement.kind == "view":
            duck.execute(to_duckdb(statement.sql))
    return duck


def test_athena_views_transpiled_to_duckdb_give_the_change_logs_state_exactly(
    lake: tuple[Path, list[dict[str, Any]]],
) -> None:
    # GIVEN the pipeline's lake and the Athena views, transpiled to DuckDB by sqlglot
    lake_dir, lines = lake

    # WHEN they are asked for the latest state, the state at each day's end and the history
    with _athena_on_duckdb(lake_dir, LakeTable(TABLE, ("pk", "sk"))) as duck:
        latest = duck.execute("SELECT pk, sk, record FROM changelake.orders_latest").fetchall()
        days = {
            day: duck.execute(
                f"SELECT pk, sk, record FROM changelake.orders_history WHERE {as_of_predicate(_end_of(day))}"
            ).fetchall()
            for day in (DAY_ONE.date(), DAY_ONE.date() + timedelta(days=1))
        }
        history = duck.execute(
            "SELECT pk, sequence_number, valid_from, valid_to, deleted FROM changelake.orders_history "
            "WHERE pk = 'customer#b' ORDER BY valid_from, sequence_number"
        ).fetchall()

    # THEN the states equal the change log's, value for value (38 digits, 40-digit sequence numbers)
    assert _state_by_key(latest) == _reference_state(lines)
    for day, rows in days.items():
        assert _state_by_key(rows) == _reference_state(lines, _end_of(day))
    # AND item b's history orders its 39-digit sequence number first, and the change whose time is
    # earlier than its predecessor's leaves that predecessor an empty interval
    assert [row[1] for row in history] == [
        str(SHORT_SEQUENCE),
        str(SEQUENCE_BASE + 3),
        str(SEQUENCE_BASE + 9),
        str(SEQUENCE_BASE + 8),
    ]
    assert history[2][3] is None  # the latest change (by sequence) is valid from its time on
    assert history[3][3] == history[2][2]  # the earlier one ends where the later one starts: empty


def test_snapshot_view_reads_a_snapshot_day_exactly(tmp_path: Path) -> None:
    # GIVEN one snapshot day in docs/contracts.md's line format, with a 38-digit number and a
    # 40-digit sequence number, beside a manifest that is not data
    folder = tmp_path / "snapshot" / TABLE / "dt=2026-11-22"
    folder.mkdir(parents=True)
    line = (
        f'{{"table":"{TABLE}","keys":{{"sk":"order#1","pk":"customer#a"}},'
        f'"item":{{"pk":"customer#a","sk":"order#1","big":{BIG},"precise":{PRECISE}}},'
        f'"event_id":"e1","event_time":"2026-11-22T10:30:00.000Z","sequence_number":"{SEQUENCE_BASE + 2}"}}'
    )
    (folder / "part-00000.jsonl.gz").write_bytes(gzip.compress(line.encode() + b"\n"))
    (folder / "_manifest.jsonl.gz").write_bytes(gzip.compress(b"not data\n"))

    # WHEN the snapshot view reads it
    with connect(tmp_path) as duck:
        rows = duck.execute(
            'SELECT "table", keys::VARCHAR, sequence_number, record::VARCHAR, dt FROM snapshot'
        ).fetchall()

    # THEN the item comes back exactly, keyed by its key attributes in name order
    ((table, keys, sequence_number, record, day),) = rows
    assert (table, keys, sequence_number, day) == (
        TABLE,
        '{"pk":"customer#a","sk":"order#1"}',
        str(SEQUENCE_BASE + 2),
        date(2026, 11, 22),
    )
    assert record == line
    assert _exact(record)["item"]["precise"] == Decimal(PRECISE)


def test_make_runs_printed_query_shows_38_digit_numbers_exactly(
    lake: tuple[Path, list[dict[str, Any]]],
) -> None:
    # GIVEN the pipeline's lake
    lake_dir, lines = lake

    # WHEN make run's summary takes its DuckDB query and answer (print_summary prints both as they are)
    query, sample = duckdb_preview(lake_dir)

    # THEN the query reads the views, and the answer shows each item's 38-digit numbers digit for digit
    assert "FROM latest AS c" in query
    header, *rows = sample.splitlines()
    assert header.split() == ["table", "pk", "big", "precise", "same_in_snapshot"]
    assert len(rows) == len(_reference_state(lines))
    for row in rows:
        assert row.split()[2:4] == [BIG, PRECISE]


def test_views_give_the_snapshot_layers_state_for_every_day(lake: tuple[Path, list[dict[str, Any]]]) -> None:
    # GIVEN the pipeline's lake with the snapshot layer's days, built by SnapshotFunction
    lake_dir, _ = lake
    days = (DAY_ONE.date(), DAY_ONE.date() + timedelta(days=1))

    # WHEN each day is read from the snapshot layer, from DuckDB's history and from the Athena views
    with connect(lake_dir) as duck:
        snapshots = {
            day: duck.execute(
                "SELECT keys::VARCHAR, record::VARCHAR FROM snapshot WHERE dt = ?", [day]
            ).fetchall()
            for day in days
        }
        states = {
            day: duck.execute(
                "SELECT keys::VARCHAR, record::VARCHAR FROM state_at(?)", [_end_of(day)]
            ).fetchall()
            for day in days
        }
        shown = duck.execute(PREVIEW_QUERY).fetchall()
    with _athena_on_duckdb(lake_dir, LakeTable(TABLE, ("pk", "sk"))) as athena:
        athena_states = {
            day: athena.execute(
                f"SELECT pk, sk, record FROM changelake.orders_history WHERE {as_of_predicate(_end_of(day))}"
            ).fetchall()
            for day in days
        }

    # THEN every day's items, values and change fields are the same in all three, value for value
    for day in days:
        layer = {identity: _exact(record) for identity, record in _by_keys_text(snapshots[day]).items()}
        assert layer, day
        expected = {
            identity: {"item": change["new_image"], **{f: change[f] for f in CHANGE_FIELDS}}
            for identity, change in _by_keys(states[day]).items()
        }
        assert {identity: _snapshot_fields(line) for identity, line in layer.items()} == expected
        athena_expected = {
            identity: {"item": change["new_image"], **{f: change[f] for f in CHANGE_FIELDS}}
            for identity, change in _state_by_key(athena_states[day]).items()
        }
        assert athena_expected == expected
    # AND make run's query finds the latest snapshot day's 38 digits equal to the change log's
    assert [row[-1] for row in shown] == [True] * len(shown)


CHANGE_FIELDS = ("event_id", "event_time", "sequence_number")


def _by_keys_text(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], str]:
    return {(json.loads(keys)["pk"], json.loads(keys)["sk"]): record for keys, record in rows}


def _snapshot_fields(line: dict[str, Any]) -> dict[str, Any]:
    return {"item": line["item"], **{field: line[field] for field in CHANGE_FIELDS}}

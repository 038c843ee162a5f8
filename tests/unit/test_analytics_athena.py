"""The Athena DDL: every statement parses in sqlglot's athena dialect; tables, types and projection."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import expressions

from analytics.__main__ import main
from analytics.athena import HIVE_JSON_SERDE, script, statements
from analytics.lake import DefinitionError, Lake, LakeTable
from analytics.views import SEQUENCE_ORDER, to_duckdb
from changelake.formats.item_types import hive_type, item_typing

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "amount": {"type": "number", "minimum": 0, "maximum": 999999.99, "multipleOf": 0.01},
        "count": {"type": ["integer", "null"], "minimum": -5, "maximum": 12345},
        "ratio": {"type": "number"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}, "geo": {"type": "array"}}},
        "anything": {},
        "first-name": {"type": "string"},
    },
}


def test_every_statement_parses_as_athena_sql() -> None:
    # GIVEN two tables, one with a JSON Schema
    lake = Lake("my-data-bucket", database="lake", since=date(2026, 3, 1))
    tables = [LakeTable("orders", ("pk", "sk"), SCHEMA), LakeTable("Users.v2", ("user_id",))]

    # WHEN the DDL is rendered
    rendered = statements(lake, tables)

    # THEN each statement parses in sqlglot's athena dialect as the CREATE it says it is
    assert len(rendered) == 1 + (7 + 3) + (6 + 3)  # orders has a schema: its Parquet snapshot too
    for statement in rendered:
        parsed = sqlglot.parse_one(statement.sql, read="athena")
        assert isinstance(parsed, expressions.Create)
        assert (
            parsed.args["kind"].upper()
            == {"database": "DATABASE", "table": "TABLE", "view": "VIEW"}[statement.kind]
        )
    # AND the names are Athena's (lowercase, _ for anything else)
    assert [s.name for s in rendered if s.kind == "view"] == [
        "orders_changes",
        "orders_history",
        "orders_latest",
        "users_v2_changes",
        "users_v2_history",
        "users_v2_latest",
    ]
    # AND the whole script splits into the same statements
    assert len(sqlglot.parse(script(lake, tables), read="athena")) == len(rendered)


def test_tables_use_the_hive_json_serde_typed_from_the_schema_and_project_partitions() -> None:
    # GIVEN a table with a JSON Schema
    rendered = {
        s.name: s.sql for s in statements(Lake("my-data-bucket"), [LakeTable("orders", ("pk", "sk"), SCHEMA)])
    }

    # THEN the typed change table reads with the Hive JSON SerDe, images as structs with exact types
    compacted = rendered["orders_compacted"]
    assert f"ROW FORMAT SERDE '{HIVE_JSON_SERDE}'" in compacted
    assert "openx" not in compacted.lower()
    image = (
        "struct<pk:string,amount:decimal(8,2),count:decimal(5,0),ratio:string,active:boolean,"
        "tags:array<string>,address:struct<city:string>>"
    )
    assert f"`new_image` {image}," in compacted
    assert f"`old_image` {image}," in compacted
    assert "`keys` map<string,string>" in compacted
    # AND what the schema does not pin down is named, not typed
    assert "address.geo" in compacted
    assert "anything" in compacted
    assert "first-name" in compacted
    # AND partitions are projected: dt a date by day, hour an int of two digits, Hive-style folders
    assert "PARTITIONED BY (`dt` date, `hour` int)" in compacted
    for expected in (
        "'projection.dt.type'='date'",
        "'projection.dt.format'='yyyy-MM-dd'",
        "'projection.dt.range'='2026-01-01,NOW'",
        "'projection.hour.type'='integer'",
        "'projection.hour.range'='0,23'",
        "'projection.hour.digits'='2'",
        "'storage.location.template'='s3://my-data-bucket/compacted/orders/dt=${dt}/hour=${hour}/'",
    ):
        assert expected in compacted
    # AND the snapshot has the item typed and a daily partition only
    snapshot = rendered["orders_snapshot"]
    assert f"`item` {image}," in snapshot
    assert "PARTITIONED BY (`dt` date)\n" in snapshot
    assert "'storage.location.template'='s3://my-data-bucket/snapshot/orders/dt=${dt}/'" in snapshot
    # AND the lines tables keep each record's text whole in one string
    assert "(\n  `line` string\n)" in rendered["orders_raw_lines"]
    assert "FIELDS TERMINATED BY '\\001'" in rendered["orders_raw_lines"]


def test_a_table_with_a_schema_gets_its_parquet_snapshot_table() -> None:
    # GIVEN a table with a JSON Schema and one without
    lake = Lake("my-data-bucket", since=date(2026, 3, 1))
    tables = [LakeTable("orders", ("pk", "sk"), SCHEMA), LakeTable("plain")]

    # WHEN the DDL is rendered
    rendered = {statement.name: statement.sql for statement in statements(lake, tables)}

    # THEN only the table with a schema has a Parquet snapshot table, over snapshot-parquet/, by day
    assert [name for name in rendered if name.endswith("_parquet")] == ["orders_snapshot_parquet"]
    parsed = sqlglot.parse_one(rendered["orders_snapshot_parquet"], read="athena")
    assert isinstance(parsed, expressions.Create)
    ddl = rendered["orders_snapshot_parquet"]
    assert "STORED AS PARQUET" in ddl
    assert "LOCATION 's3://my-data-bucket/snapshot-parquet/orders/'" in ddl
    assert "'storage.location.template'='s3://my-data-bucket/snapshot-parquet/orders/dt=${dt}/'" in ddl
    # AND its columns are the ones the snapshot function writes: DECIMALs where the schema bounds the
    # digits, unbounded numbers and nested values as strings (their exact text), the rest in item_rest
    columns = [(c.name, c.args["kind"].sql("hive").lower()) for c in parsed.find_all(expressions.ColumnDef)]
    assert columns == [
        ("keys", "string"),
        ("event_id", "string"),
        ("event_time", "string"),
        ("sequence_number", "string"),
        ("pk", "string"),
        ("amount", "decimal(8, 2)"),
        ("count", "decimal(5, 0)"),
        ("ratio", "string"),
        ("active", "boolean"),
        ("tags", "string"),
        ("address", "string"),
        ("anything", "string"),
        ("item_rest", "string"),
        ("dt", "date"),
    ]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "number", "minimum": -1, "maximum": 10**30, "multipleOf": 1e-7}, "decimal(38,7)"),
        ({"type": "number", "minimum": -1, "maximum": 10**31, "multipleOf": 1e-7}, "string"),  # 39 digits
        ({"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25}, "string"),  # not a power of ten
        ({"type": "integer", "minimum": 0}, "string"),  # no upper bound
        ({"type": "integer", "exclusiveMinimum": -100, "exclusiveMaximum": 100}, "decimal(3,0)"),
        ({"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}}, "array<decimal(1,0)>"),
    ],
)
def test_numbers_are_decimal_only_where_the_schema_bounds_their_digits(
    schema: dict[str, Any], expected: str
) -> None:
    # GIVEN one field's schema WHEN it is typed THEN it is a DECIMAL that holds every valid value, or a string
    typing = item_typing({"type": "object", "properties": {"x": schema}})
    assert typing.struct is not None
    assert hive_type(typing.struct) == f"struct<x:{expected}>"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Lake("Not_A_Bucket"), "bucket"),
        (lambda: Lake("my-data-bucket", database="My-Db"), "database"),
        (lambda: Lake("my-data-bucket", raw_prefix="/raw/"), "raw_prefix"),
        (lambda: LakeTable("../x"), "table"),
        (lambda: LakeTable("orders", ("pk", "sk", "x")), "keys of orders"),
        (lambda: LakeTable("orders", ("record",)), "keys of orders"),
        (lambda: LakeTable("orders", ("a.b",)), "keys of orders"),
        (lambda: LakeTable("orders", ("id", "ID")), "keys of orders"),
        (lambda: LakeTable("orders", alias="Orders-2"), "alias of orders"),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(make: Any, field: str) -> None:
    # GIVEN a malformed definition WHEN it is made THEN it fails naming the field
    with pytest.raises(DefinitionError, match=f"^{field}:"):
        make()


def test_two_tables_with_one_athena_name_are_refused() -> None:
    # GIVEN tables a-b and a.b (both a_b in Athena) WHEN rendered THEN the clash is named
    with pytest.raises(DefinitionError, match=r"'a-b' and 'a\.b' both become 'a_b'"):
        statements(Lake("my-data-bucket"), [LakeTable("a-b"), LakeTable("a.b")])


def test_cli_prints_the_ddl_with_the_tables_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a schema folder with orders.json
    (tmp_path / "orders.json").write_text('{"type": "object", "properties": {"pk": {"type": "string"}}}')

    # WHEN the CLI renders orders (key pk only) and a table without a schema
    code = main(
        [
            "athena",
            "--bucket",
            "my-data-bucket",
            "--table",
            "orders:pk",
            "--table",
            "users",
            "--schema-dir",
            str(tmp_path),
        ]
    )

    # THEN it prints both tables' DDL, typed where there is a schema
    out = capsys.readouterr().out
    assert code == 0
    assert "`new_image` struct<pk:string>," in out
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `changelake`.`users_raw` (" in out
    assert 'PARTITION BY "pk" ORDER BY' in out


def test_cli_refuses_a_bad_table_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an unsafe table name WHEN the CLI renders it THEN it exits 2 naming the problem, printing no DDL
    assert main(["athena", "--bucket", "my-data-bucket", "--table", "../etc"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "table name is not a safe path segment" in captured.err


def test_cli_prints_only_the_views_for_the_templates_tables(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the stack's ChangeTable, named change_table in Athena as the template's Glue tables are
    # WHEN the CLI prints only the views
    code = main(
        [
            "athena",
            "--bucket",
            "my-data-bucket",
            "--table",
            "stack-changes:pk,sk=change_table",
            "--only",
            "views",
        ]
    )

    # THEN it prints the three views over the template's tables, and no table or database
    statements_out = [s for s in capsys.readouterr().out.split(";\n\n") if s.strip()]
    assert code == 0
    assert [s.split(" AS\n")[0] for s in statements_out] == [
        'CREATE OR REPLACE VIEW "changelake"."change_table_changes"',
        'CREATE OR REPLACE VIEW "changelake"."change_table_history"',
        'CREATE OR REPLACE VIEW "changelake"."change_table_latest"',
    ]
    assert '"changelake"."change_table_compacted_lines"' in statements_out[0]


@pytest.mark.parametrize(
    ("example", "arguments"),
    [
        ("change_table.sql", ["--table", "changelake-changes:pk,sk=change_table"]),
        ("orders.sql", ["--table", "orders:pk,sk", "--schema-dir", "docs/athena"]),
    ],
)
def test_committed_examples_are_what_the_cli_prints(
    example: str, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an example in docs/athena WHEN the CLI renders the same tables THEN the example is current
    assert main(["athena", "--bucket", "my-changelake-bucket", *arguments]) == 0
    assert capsys.readouterr().out == (Path("docs/athena") / example).read_text()


def test_sequence_numbers_are_ordered_as_numbers_in_both_engines() -> None:
    # GIVEN sequence numbers of different lengths, one with leading zeros (the record allows them)
    numbers = ["10" + "0" * 38, "9" * 39, "10", "007", "8", "0"]
    rows = ", ".join(f"('{number}', 'e{index}')" for index, number in enumerate(numbers))
    values = f"(VALUES {rows}) AS t(sequence_number, event_id)"
    query = f"SELECT sequence_number FROM {values} ORDER BY {SEQUENCE_ORDER}"

    # WHEN the Athena ORDER BY runs in DuckDB, transpiled, and is parsed as Athena SQL
    import duckdb

    with duckdb.connect() as duck:
        ordered = [row[0] for row in duck.execute(to_duckdb(query)).fetchall()]
    sqlglot.parse_one(query, read="athena")

    # THEN they come in numeric order, which is neither the text order nor a 64-bit or DECIMAL(38) one
    assert ordered == sorted(numbers, key=int)
    assert ordered != sorted(numbers)

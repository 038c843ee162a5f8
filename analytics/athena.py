"""Athena (engine 3) DDL for the lake: tables over raw/, compacted/ and snapshot/, and the views.

Pure functions from a ``Lake`` and its ``LakeTable``s to SQL text. For each DynamoDB table ``t``
(``orders``, Athena name ``orders``):

``orders_raw``, ``orders_compacted``, ``orders_snapshot``
    The Hive JSON SerDe (``org.apache.hive.hcatalog.data.JsonSerDe``; AWS documents that the OpenX
    SerDe can return non-deterministic results) with typed columns: the record's strings,
    ``keys`` as ``map<string,string>`` (key attributes are strings, numbers or binary, and a number
    arrives as its own digits), and the images (``item`` in a snapshot) as structs typed from the
    table's JSON Schema, with ``DECIMAL(p, s)`` where the schema bounds the digits.
``orders_raw_lines``, ``orders_compacted_lines``, ``orders_snapshot_lines``
    The same files, one ``line`` per record: the JSON text exactly as stored. The Hive JSON SerDe
    cannot give an object as JSON text (Athena's reader refuses an object for a string column;
    Hive's own reads it wrongly), so whole images, exact, come from these.
``orders_snapshot_parquet`` (a table with a JSON Schema only)
    The Parquet snapshot days the snapshot function derives (``changelake.snapshot.parquet``):
    one column per top-level attribute, typed as in the JSON tables but nested values as JSON
    text, ``DECIMAL(p, s)`` where the schema bounds the digits; ``item_rest`` holds the rest.
``orders_changes``, ``orders_history``, ``orders_latest``
    Views: every change once (compacted/ and the raw/ hours not compacted yet), each change's
    validity interval, and the items as they are now.

Partitions are projected (no crawler, no ``MSCK REPAIR``): ``dt`` a ``date`` (``yyyy-MM-dd``) from
``Lake.since`` to today, ``hour`` an ``int`` written with two digits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from analytics.lake import Lake, LakeTable, check_distinct
from analytics.views import history_select, latest_select, quoted
from changelake.formats.item_types import StructType, hive_type, item_typing
from changelake.snapshot.columns import ColumnLayout

HIVE_JSON_SERDE = "org.apache.hive.hcatalog.data.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
LAZY_SIMPLE_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
#: A JSON line never holds a raw control character (JSON escapes them), so splitting fields at
#: \001 leaves each line whole in its one column.
LINE_DELIMITER = "\\001"
USER_IDENTITY = "struct<type:string,principalid:string>"
#: The change record's columns before the images, and after them (docs/contracts.md).
CHANGE_HEAD = (
    ("event_id", "string"),
    ("event_name", "string"),
    ("table", "string"),
    ("event_time", "string"),
    ("sequence_number", "string"),
    ("keys", "map<string,string>"),
)
CHANGE_TAIL = (("size_bytes", "bigint"), ("user_identity", USER_IDENTITY))
SNAPSHOT_COLUMNS = (
    ("table", "string"),
    ("keys", "map<string,string>"),
    ("event_id", "string"),
    ("event_time", "string"),
    ("sequence_number", "string"),
)


@dataclass(frozen=True)
class Statement:
    """One DDL statement: what it creates (``table`` or ``view``), its name, its SQL."""

    kind: str
    name: str
    sql: str


def statements(lake: Lake, tables: list[LakeTable]) -> list[Statement]:
    """Every statement, in an order Athena can run them one by one."""
    check_distinct(tables)
    result = [Statement("database", lake.database, f"CREATE DATABASE IF NOT EXISTS `{lake.database}`")]
    for table in tables:
        result.extend(_table_statements(lake, table))
    return result


def script(lake: Lake, tables: list[LakeTable], *, only: str | None = None) -> str:
    """The statements as one file (Athena's console runs one at a time); ``only`` ``tables`` or
    ``views`` (the database comes with the tables)."""
    kinds = {"tables": {"database", "table"}, "views": {"view"}}.get(
        only or "", {"database", "table", "view"}
    )
    return "".join(
        f"{statement.sql};\n\n" for statement in statements(lake, tables) if statement.kind in kinds
    )


@dataclass(frozen=True)
class TableDefinition:
    """One external table: what both its DDL and its Glue ``TableInput`` (template.yaml) say."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partitions: tuple[tuple[str, str], ...]
    location: str
    json_serde: bool
    since: date
    notes: tuple[str, ...] = ()
    parquet: bool = False  # Parquet files (json_serde is then ignored)

    def projection(self) -> list[tuple[str, str]]:
        """Partition projection: ``dt`` by day from ``since`` to today, ``hour`` 00 to 23."""
        properties = [
            ("projection.enabled", "true"),
            ("projection.dt.type", "date"),
            ("projection.dt.format", "yyyy-MM-dd"),
            ("projection.dt.range", f"{self.since.isoformat()},NOW"),
            ("projection.dt.interval", "1"),
            ("projection.dt.interval.unit", "DAYS"),
        ]
        template = self.location + "dt=${dt}/"
        if len(self.partitions) > 1:
            properties += [
                ("projection.hour.type", "integer"),
                ("projection.hour.range", "0,23"),
                ("projection.hour.digits", "2"),
            ]
            template += "hour=${hour}/"
        return [*properties, ("storage.location.template", template)]

    def ddl(self, database: str) -> str:
        column_list = ",\n".join(f"  `{column}` {kind}" for column, kind in self.columns)
        partition_list = ", ".join(f"`{column}` {kind}" for column, kind in self.partitions)
        if self.parquet:
            row_format = "STORED AS PARQUET"
        elif self.json_serde:
            row_format = (
                f"ROW FORMAT SERDE '{HIVE_JSON_SERDE}'\n"
                f"STORED AS INPUTFORMAT '{TEXT_INPUT}'\nOUTPUTFORMAT '{TEXT_OUTPUT}'"
            )
        else:
            row_format = f"ROW FORMAT DELIMITED FIELDS TERMINATED BY '{LINE_DELIMITER}'\nSTORED AS TEXTFILE"
        properties = ",\n".join(f"  '{key}'='{value}'" for key, value in self.projection())
        notes = "".join(f"-- not typed (still in the record's JSON text): {note}\n" for note in self.notes)
        return (
            f"{notes}CREATE EXTERNAL TABLE IF NOT EXISTS `{database}`.`{self.name}` (\n{column_list}\n)\n"
            f"PARTITIONED BY ({partition_list})\n{row_format}\n"
            f"LOCATION '{self.location}'\nTBLPROPERTIES (\n{properties}\n)"
        )

    def glue_input(self) -> dict[str, Any]:
        """The same table as a Glue ``TableInput`` (CloudFormation's ``AWS::Glue::Table``)."""
        formats = (PARQUET_INPUT, PARQUET_OUTPUT) if self.parquet else (TEXT_INPUT, TEXT_OUTPUT)
        serde: dict[str, Any] = (
            {"SerializationLibrary": PARQUET_SERDE}
            if self.parquet
            else {"SerializationLibrary": HIVE_JSON_SERDE}
            if self.json_serde
            else {"SerializationLibrary": LAZY_SIMPLE_SERDE, "Parameters": {"field.delim": "\x01"}}
        )
        return {
            "Name": self.name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE", **dict(self.projection())},
            "PartitionKeys": [{"Name": column, "Type": kind} for column, kind in self.partitions],
            "StorageDescriptor": {
                "Columns": [{"Name": column, "Type": kind} for column, kind in self.columns],
                "Location": self.location,
                "InputFormat": formats[0],
                "OutputFormat": formats[1],
                "SerdeInfo": serde,
            },
        }


def table_definitions(lake: Lake, table: LakeTable) -> list[TableDefinition]:
    """The six tables of one DynamoDB table (typed and lines, for raw/, compacted/ and snapshot/), and
    with a JSON Schema a seventh: its Parquet snapshot."""
    typing = item_typing(table.item_schema) if table.item_schema is not None else None
    image = typing.struct if typing is not None else None
    notes = tuple(typing.untyped) if typing is not None else ()
    image_columns = _hive([("new_image", image), ("old_image", image)])
    change_columns = (*CHANGE_HEAD, *image_columns, *CHANGE_TAIL)
    snapshot_columns = (*SNAPSHOT_COLUMNS[:2], *_hive([("item", image)]), *SNAPSHOT_COLUMNS[2:])
    hourly = (("dt", "date"), ("hour", "int"))
    layers = (
        ("raw", lake.raw_prefix, change_columns, hourly),
        ("compacted", lake.compacted_prefix, change_columns, hourly),
        ("snapshot", lake.snapshot_prefix, snapshot_columns, hourly[:1]),
    )
    definitions = []
    for layer, prefix, columns, partitions in layers:
        location = lake.location(prefix, table.name)
        name = f"{table.athena_name}_{layer}"
        definitions += [
            TableDefinition(
                name, columns, partitions, location, json_serde=True, since=lake.since, notes=notes
            ),
            TableDefinition(f"{name}_lines", (("line", "string"),), partitions, location, False, lake.since),
        ]
    if table.item_schema is not None:
        definitions.append(_parquet_definition(lake, table))
    return definitions


def _parquet_definition(lake: Lake, table: LakeTable) -> TableDefinition:
    """The Parquet snapshot: the columns the snapshot function writes, partitioned by ``dt``."""
    columns = ColumnLayout.from_schema(table.item_schema or {}).columns
    return TableDefinition(
        f"{table.athena_name}_snapshot_parquet",
        tuple((column.name.lower(), column.hive_type) for column in columns),
        (("dt", "date"),),
        lake.location(lake.parquet_prefix, table.name),
        json_serde=False,
        since=lake.since,
        parquet=True,
    )


def _table_statements(lake: Lake, table: LakeTable) -> Iterator[Statement]:
    for definition in table_definitions(lake, table):
        yield Statement("table", definition.name, definition.ddl(lake.database))
    yield from _views(lake, table)


def _hive(columns: Sequence[tuple[str, StructType | None]]) -> list[tuple[str, str]]:
    return [(name, hive_type(typed)) for name, typed in columns if typed is not None]


def _views(lake: Lake, table: LakeTable) -> Iterator[Statement]:
    name = table.athena_name

    def qualified(suffix: str) -> str:
        return f"{quoted(lake.database)}.{quoted(f'{name}_{suffix}')}"

    keys = list(table.key_attributes)
    selects = {
        "changes": _changes_select(qualified, keys),
        "history": history_select(qualified("changes"), keys),
        "latest": latest_select(qualified("history"), keys),
    }
    for suffix, select in selects.items():
        yield Statement(
            "view", f"{name}_{suffix}", f"CREATE OR REPLACE VIEW {qualified(suffix)} AS\n{select}"
        )


def _changes_select(qualified: Callable[[str], str], keys: list[str]) -> str:
    """Every change once: compacted/ first, then raw/ (a change lands in the same hour in both)."""
    key_columns = "".join(
        f"    json_extract_scalar(line, '$.keys.{attribute}') AS {quoted(attribute)},\n" for attribute in keys
    )
    fields = "".join(
        f"    json_extract_scalar(line, '$.{field}') AS {quoted(field)},\n"
        for field in ("table", "event_id", "event_name", "event_time", "sequence_number")
    )
    selected = ", ".join([*(quoted(k) for k in keys), '"table"', "event_id", "event_name", "event_time"])
    return (
        f"SELECT {selected}, sequence_number, record, dt, hour\nFROM (\n"
        f"  SELECT\n{key_columns}{fields}"
        f"    line AS record, dt, hour,\n"
        f"    row_number() OVER (\n"
        f"      PARTITION BY dt, hour, json_extract_scalar(line, '$.event_id') ORDER BY layer\n"
        f"    ) AS copy\n"
        f"  FROM (\n"
        f"    SELECT line, dt, hour, 0 AS layer FROM {qualified('compacted_lines')}\n"
        f"    UNION ALL\n"
        f"    SELECT line, dt, hour, 1 AS layer FROM {qualified('raw_lines')}\n"
        f"  ) AS layers\n"
        f") AS numbered\n"
        f"WHERE copy = 1"
    )

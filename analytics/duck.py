"""DuckDB views over a local or downloaded lake that keep every number exact.

``connect(lake_dir)`` returns a DuckDB connection with these views (``views_sql`` is the same as a
script, for the ``duckdb`` shell):

``changes``   every change once (compacted/, and raw/ where an hour is not compacted yet):
              ``table``, ``keys``, ``event_id``, ``event_name``, ``event_time``, ``sequence_number``,
              ``record``, ``dt``, ``hour``
``history``   each change with ``valid_from``, ``valid_to`` (null while latest) and ``deleted``
``latest``    the items as they are now
``snapshot``  the snapshot layer: ``table``, ``keys``, ``event_id``, ``event_time``,
              ``sequence_number``, ``record``, ``dt``
``state_at(instant)``  a table macro: ``history`` as of an ISO 8601 instant (``...T..Z`` text)

Why lines, not ``read_json``: DuckDB's JSON reader turns a number with a fraction into a DOUBLE on
the way in (``1234567890123456789012345678.9012345678`` becomes ``1.2345678901234569e27``), even
into a DECIMAL column, and so does every JSON path operator. Reading each file as lines of text
(``read_csv`` with no delimiter, quote or escape a JSON line can contain) keeps the record exactly:
``record`` is its JSON text, verbatim. Integers of any length stay exact through ``->>``; a number
with a fraction is exact through ``from_json(record, '{"new_image": {"x": "DECIMAL(38,10)"}}')``
where its digits fit the DECIMAL, and always in ``record``'s text.

``keys`` is the item's identity: its key attributes as a JSON object with the names in sorted order
(DuckDB renders a key number with a fraction from a DOUBLE here, so two such keys that agree in
their first 17 significant digits are one item to DuckDB; Athena's views take the key attributes'
exact text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analytics.views import as_of_condition, history_select, latest_select, to_duckdb

DATA_SUFFIX = ".jsonl.gz"
#: The longest line DuckDB will read. The longest record: two 400 KB images (DynamoDB's item limit)
#: whose every byte JSON escapes as \u00XX, 4.8 MB. Measured on such a line: read_csv's default
#: (2 MiB) refuses it; 8 MiB reads it at 161 MB peak RSS (64 MiB: 168 MB).
MAX_LINE_BYTES = 8 * 1024 * 1024
IDENTITY = ("table", "keys")
_CANONICAL_KEYS = (
    "to_json(map_from_entries(list_sort(map_entries("
    "json_transform(line -> '$.keys', '\"MAP(VARCHAR, JSON)\"')))))"
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lines_select(lake_dir: Path, layer: str, *, hourly: bool, table: str = "*") -> str:
    """The data files of one layer (of one table folder, or all) as (line, dt[, hour]); empty if none."""
    # only partition folders: a table folder may hold others (the snapshot layer's _bootstrap/ base)
    depth = "/dt=*/hour=*/" if hourly else "/dt=*/"
    files = [
        path
        for path in sorted((lake_dir / layer).glob(table + depth + "*" + DATA_SUFFIX))
        if not path.name.startswith(("_", "."))
    ]
    columns = "line, dt, hour" if hourly else "line, dt"
    if not files:
        empty = "NULL::VARCHAR AS line, NULL::DATE AS dt" + (", NULL::INTEGER AS hour" if hourly else "")
        return f"SELECT {empty} WHERE false"
    hive_types = "{'dt': 'DATE', 'hour': 'INTEGER'}" if hourly else "{'dt': 'DATE'}"
    listed = "[" + ", ".join(_literal(str(path)) for path in files) + "]"
    return (
        f"SELECT {columns} FROM read_csv({listed}, columns = {{'line': 'VARCHAR'}}, delim = chr(1), "
        f"quote = '', escape = '', header = false, auto_detect = false, "
        f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {2 * MAX_LINE_BYTES}, "
        f"hive_partitioning = true, hive_types = {hive_types})"
    )


def _changes(lake_dir: Path) -> str:
    fields = ", ".join(
        f"line ->> '$.{field}' AS {field}"
        for field in ("event_id", "event_name", "event_time", "sequence_number")
    )
    return (
        'SELECT "table", keys, event_id, event_name, event_time, sequence_number, record, dt, hour\n'
        "FROM (\n"
        f"  SELECT line ->> '$.table' AS \"table\", {_CANONICAL_KEYS} AS keys, {fields},\n"
        "    line::JSON AS record, dt, hour,\n"
        "    row_number() OVER (PARTITION BY dt, hour, line ->> '$.event_id' ORDER BY layer) AS copy\n"
        "  FROM (\n"
        f"    SELECT *, 0 AS layer FROM ({lines_select(lake_dir, 'compacted', hourly=True)})\n"
        "    UNION ALL\n"
        f"    SELECT *, 1 AS layer FROM ({lines_select(lake_dir, 'raw', hourly=True)})\n"
        "  )\n"
        ")\nWHERE copy = 1"
    )


def _snapshot(lake_dir: Path) -> str:
    return (
        f"SELECT line ->> '$.table' AS \"table\", {_CANONICAL_KEYS} AS keys,\n"
        "  line ->> '$.event_id' AS event_id, line ->> '$.event_time' AS event_time,\n"
        "  line ->> '$.sequence_number' AS sequence_number, line::JSON AS record, dt\n"
        f"FROM ({lines_select(lake_dir, 'snapshot', hourly=False)})"
    )


def views_sql(lake_dir: Path) -> str:
    """The statements that create the views over ``lake_dir`` (its files as they are now)."""
    lake_dir = lake_dir.resolve()
    statements = [
        f"CREATE OR REPLACE VIEW changes AS\n{_changes(lake_dir)}",
        f"CREATE OR REPLACE VIEW history AS\n{to_duckdb(history_select('changes', IDENTITY))}",
        f"CREATE OR REPLACE VIEW latest AS\n{to_duckdb(latest_select('history', IDENTITY))}",
        f"CREATE OR REPLACE VIEW snapshot AS\n{_snapshot(lake_dir)}",
        "CREATE OR REPLACE MACRO state_at(instant) AS TABLE\n"
        f"SELECT * FROM history WHERE {as_of_condition('instant')}",
    ]
    return "".join(f"{statement};\n" for statement in statements)


def connect(lake_dir: Path, database: str = ":memory:") -> Any:
    """A DuckDB connection with the views over ``lake_dir`` (raw/, compacted/, snapshot/)."""
    import duckdb

    connection = duckdb.connect(database)
    connection.execute(views_sql(lake_dir))
    return connection


#: What ``make run`` prints and runs: the latest items with two 38-digit numbers, exact, and whether
#: the latest snapshot day holds the same digits (NULL before a snapshot covers the item).
PREVIEW_QUERY = """\
SELECT c."table", c.keys ->> 'pk' AS pk,
  c.record ->> '$.new_image.big' AS big,
  from_json(c.record, '{"new_image": {"precise": "DECIMAL(38,10)"}}').new_image.precise AS precise,
  s.record ->> '$.item.big' = big AS same_in_snapshot
FROM latest AS c
LEFT JOIN snapshot AS s
  ON s."table" = c."table" AND s.keys = c.keys AND s.dt = (SELECT max(dt) FROM snapshot)
ORDER BY c.event_time DESC, pk
LIMIT 5"""


def text_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """Rows as aligned text, every value whole (DuckDB's own rendering cuts long values to fit)."""
    cells = [columns, *([("NULL" if value is None else str(value)) for value in row] for row in rows)]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def preview(lake_dir: Path) -> str:
    """``PREVIEW_QUERY``'s answer over ``lake_dir``."""
    with connect(lake_dir) as connection:
        cursor = connection.execute(PREVIEW_QUERY)
        columns = [description[0] for description in cursor.description]
        return text_table(columns, cursor.fetchall())

"""``changelake query``: DuckDB over a local or downloaded lake, with the views ``changes`` and ``snapshot``.

The views come from the analytics package (``analytics.duck.connect(lake_dir)``) when it is installed.
Without it, a minimal view keeps every digit the only way DuckDB's JSON reader allows: the record's
line as stored (``line``, exact text) beside the routing fields as strings, since DuckDB's JSON
functions and ``read_json`` turn numbers past a double's precision into doubles.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from changelake_cli.errors import UsageError

#: Reads each line whole as one VARCHAR: \x01 never occurs unescaped in a JSON line, and no quoting.
_LINES = (
    "read_csv('{glob}', columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(1), quote = '', "
    "escape = '', auto_detect = false, hive_partitioning = true)"
)
_CHANGE_FIELDS = ("event_id", "event_name", "table", "event_time", "sequence_number")
_SNAPSHOT_FIELDS = ("table", "event_id", "event_time", "sequence_number")


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    views: str  # "analytics" or "minimal"


def _minimal_views(connection: Any, lake: Path) -> None:
    changes_layer = "compacted" if any((lake / "compacted").glob("*/*/*/*.jsonl.gz")) else "raw"
    layers = {
        "changes": (lake / changes_layer, "*/*/*/*.jsonl.gz", _CHANGE_FIELDS),
        "snapshot": (lake / "snapshot", "*/*/*.jsonl.gz", _SNAPSHOT_FIELDS),
    }
    for view, (folder, pattern, fields) in layers.items():
        extracted = ", ".join(f"json_extract_string(line, '$.{name}') AS \"{name}\"" for name in fields)
        if any(folder.glob(pattern)):
            source = _LINES.format(glob=str(folder / pattern).replace("'", "''"))
            # names and globs are ours (quotes doubled), never user text
            connection.execute(f"CREATE VIEW {view} AS SELECT {extracted}, dt, line FROM {source}")  # noqa: S608
        else:
            columns = ", ".join(f'NULL::VARCHAR AS "{name}"' for name in fields)
            connection.execute(
                f"CREATE VIEW {view} AS SELECT {columns}, NULL::DATE AS dt, NULL::VARCHAR AS line WHERE false"
            )


def connect(lake: Path) -> tuple[Any, str]:
    """A DuckDB connection with the views, and which views they are."""
    if not lake.is_dir():
        raise UsageError(f"no lake at {lake}: `changelake download ... --to {lake}` or `make run` makes one")
    try:
        duck = importlib.import_module("analytics.duck")
    except ModuleNotFoundError:
        import duckdb

        connection = duckdb.connect()
        _minimal_views(connection, lake)
        return connection, "minimal"
    return duck.connect(lake), "analytics"


def run_query(lake: Path, sql: str) -> QueryResult:
    import duckdb

    connection, views = connect(lake)
    try:
        relation = connection.execute(sql)
        columns = [d[0] for d in relation.description or []]
        rows = [list(row) for row in relation.fetchall()]
    except duckdb.Error as exc:
        raise UsageError(f"DuckDB: {exc}") from None
    finally:
        connection.close()
    return QueryResult(columns, rows, views)

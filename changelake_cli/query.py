"""``changelake query``: DuckDB over a local or downloaded lake, with the views ``changes`` and ``snapshot``.

The views come from the analytics package (``analytics.duck.connect(lake_dir)``) when it is installed.
Without it, a minimal view keeps every digit the only way DuckDB's JSON reader allows: the record's
line as stored (``line``, exact text) beside the routing fields as strings, since DuckDB's JSON
functions and ``read_json`` turn numbers past a double's precision into doubles.

Values come back exactly as DuckDB holds them. DuckDB's Python conversion is not exact for every
type (a TIMESTAMP_NS loses its nanoseconds, an INTERVAL of a month becomes 30 days, an infinite DATE
becomes 9999-12-31, a TIMESTAMPTZ needs pytz), so DuckDB renders those itself: the text table casts
every column to VARCHAR (DuckDB's own text, as its shell shows it), and ``--json`` casts each value
whose Python form would not be exact, or not JSON, to DuckDB's text, inside lists, structs and maps
too (``json_type``). The session's TimeZone is UTC, as every time in the lake is.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from changelake_cli.errors import UsageError

#: Reads each line whole as one VARCHAR: \x01 never occurs unescaped in a JSON line, and no quoting.
_LINES = (
    "read_csv('{glob}', columns = {{'line': 'VARCHAR'}}, header = false, delim = chr(1), quote = '', "
    "escape = '', auto_detect = false, hive_partitioning = true)"
)
_CHANGE_FIELDS = ("event_id", "event_name", "table", "event_time", "sequence_number")
_SNAPSHOT_FIELDS = ("table", "event_id", "event_time", "sequence_number")


#: How the rows come back: "text", every value as DuckDB's text (None for NULL); "json", values that
#: ``output.jsonable`` turns into JSON as they are (see ``json_type``).
Shape = Literal["text", "json"]

#: Types whose Python values are exact and JSON once ``jsonable`` has them: bool, int, float (DOUBLE;
#: NaN and infinities become strings), str (VARCHAR and JSON: the text), bytes (BLOB: base64), None.
#: Not DECIMAL: Python's Decimal prints 0.0000001000 as 1.000E-7; DuckDB's text keeps its digits.
_EXACT_IN_PYTHON = frozenset(
    {
        "boolean",
        "tinyint",
        "smallint",
        "integer",
        "bigint",
        "hugeint",
        "utinyint",
        "usmallint",
        "uinteger",
        "ubigint",
        "uhugeint",
        "double",
        "varchar",
        "blob",
        "null",
    }
)


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    views: str  # "analytics" or "minimal"

    def records(self) -> list[dict[str, Any]]:
        """Each row as an object; a name that repeats gets ``_1``, ``_2`` as in DuckDB's subqueries."""
        names: list[str] = []
        for column in self.columns:
            name, number = column, 0
            while name in names:
                number += 1
                name = f"{column}_{number}"
            names.append(name)
        return [dict(zip(names, row, strict=True)) for row in self.rows]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_type(duck_type: Any, float_as: str = "DOUBLE") -> str | None:
    """The type a value of ``duck_type`` is cast to so that its Python value is exact JSON; None
    when it is already (see ``_EXACT_IN_PYTHON``).

    Any other scalar (DECIMAL, DATE, TIME, TIMETZ, TIMESTAMP*, TIMESTAMPTZ, INTERVAL, UUID, BIT, ENUM,
    BIGNUM, and types DuckDB adds later) becomes VARCHAR, DuckDB's own text of it. A FLOAT becomes
    ``float_as``: a cast to VARCHAR and then to DOUBLE gives the number DuckDB shows (0.1, where the
    FLOAT widened to a double is 0.10000000149011612).
    """
    kind = duck_type.id
    if kind in _EXACT_IN_PYTHON:
        return None
    if kind == "float":
        return float_as
    if kind in ("list", "array", "map", "struct", "tuple", "union"):
        return _nested_json_type(duck_type, float_as)
    return "VARCHAR"


def _nested_json_type(duck_type: Any, float_as: str) -> str | None:
    """``json_type`` of a LIST, ARRAY, MAP (its keys VARCHAR, as a JSON object's keys are text),
    STRUCT, unnamed STRUCT (TUPLE) or UNION: the same shape with each member's ``json_type``."""
    kind = duck_type.id
    if kind in ("list", "array"):
        parts = dict(duck_type.children)
        child = json_type(parts["child"], float_as)
        return None if child is None else child + ("[]" if kind == "list" else f"[{parts['size']}]")
    if kind == "map":
        value = dict(duck_type.children)["value"]
        return f"MAP(VARCHAR, {json_type(value, float_as) or value})"
    members = duck_type.children[1:] if kind == "union" else duck_type.children  # a union's first: its tag
    targets = [json_type(member, float_as) for _, member in members]
    if all(target is None for target in targets):
        return None
    fields = [
        f"{target or member}" if kind == "tuple" else f"{_quoted(name)} {target or member}"
        for (name, member), target in zip(members, targets, strict=True)
    ]
    return f"{kind.upper()}({', '.join(fields)})"


def _selected(duck_type: Any, position: int, shape: Shape) -> str:
    """The expression that selects column ``position`` (1-based) in ``shape``."""
    column = f"#{position}"
    if shape == "text":
        return f"CAST({column} AS VARCHAR)"
    as_text, as_json = json_type(duck_type, "VARCHAR"), json_type(duck_type)
    if as_json is None:
        return column
    if as_text == as_json:
        return f"CAST({column} AS {as_json})"
    return f"CAST(CAST({column} AS {as_text}) AS {as_json})"


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

        connection, views = duckdb.connect(), "minimal"
        _minimal_views(connection, lake)
    else:
        connection, views = duck.connect(lake), "analytics"
    # The lake's days and times are UTC; DuckDB's default is the machine's zone.
    connection.execute("SET TimeZone = 'UTC'")
    return connection, views


def run_query(lake: Path, sql: str, shape: Shape = "text") -> QueryResult:
    """``sql``'s last statement's rows, every value exactly as DuckDB holds it, in ``shape``."""
    import duckdb

    connection, views = connect(lake)
    try:
        relation = connection.sql(sql)  # a statement with no result (SET, ...) gives None
        if relation is None:
            return QueryResult([], [], views)
        selected = ", ".join(
            _selected(duck_type, position, shape) for position, duck_type in enumerate(relation.types, 1)
        )
        # the projection runs the query once (a statement other than a SELECT has run already)
        rows = [list(row) for row in relation.project(selected).fetchall()]
        return QueryResult(list(relation.columns), rows, views)
    except duckdb.Error as exc:
        raise UsageError(f"DuckDB: {exc}") from None
    finally:
        connection.close()

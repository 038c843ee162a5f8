"""The history and latest-state queries, written once in Athena's dialect and transpiled for DuckDB.

Both read a ``changes`` relation with one row per change (``event_id``, ``event_name``,
``event_time``, ``sequence_number``, ``record``, and the columns that identify an item) and give
the state of each item through time, exactly as the snapshot layer defines it (docs/contracts.md): the
state as of a time T is the change with the highest ``sequence_number`` among those with
``event_time <= T``, and the item is absent when that change is a ``REMOVE``.

So each change is valid from its ``event_time`` until the earliest ``event_time`` of any later change
(by sequence number) of the same item. Taking that minimum, rather than the next change's time,
keeps exactly one change valid at every instant even if event times ever disagree with sequence
order (a later change whose time is not later makes the earlier interval empty). ``record`` is the
change's JSON line, verbatim, so no number in it is rounded on the way through.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlglot

#: Sequence numbers are strings of up to 64 digits (40 today): longer than DECIMAL(38) and BIGINT
#: hold, so they are ordered as numbers by their length without leading zeros, then their digits
#: (regexp_replace rather than the two-argument ltrim: every Trino and DuckDB release has it).
_SIGNIFICANT = "regexp_replace(sequence_number, '^0+', '')"
SEQUENCE_ORDER = f"length({_SIGNIFICANT}), {_SIGNIFICANT}, event_id"


def quoted(name: str) -> str:
    """An identifier as Athena's DML (and DuckDB) spell it."""
    return '"' + name.replace('"', '""') + '"'


def history_select(changes: str, identity: Sequence[str]) -> str:
    """Each change with ``valid_from``, ``valid_to`` (null while it is the latest) and ``deleted``."""
    columns = ", ".join(quoted(column) for column in identity)
    return (
        f"SELECT {columns}, event_id, event_name, sequence_number,\n"
        f"  event_time AS valid_from,\n"
        f"  min(event_time) OVER (\n"
        f"    PARTITION BY {columns} ORDER BY {SEQUENCE_ORDER}\n"
        f"    ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING\n"
        f"  ) AS valid_to,\n"
        f"  event_name = 'REMOVE' AS deleted,\n"
        f"  record\n"
        f"FROM {changes}"
    )


def latest_select(history: str, identity: Sequence[str]) -> str:
    """The items as they are now (the latest change of each item, unless it removed the item)."""
    columns = ", ".join(quoted(column) for column in identity)
    return (
        f"SELECT {columns}, event_id, sequence_number, valid_from AS event_time, record\n"
        f"FROM {history}\n"
        f"WHERE valid_to IS NULL AND NOT deleted"
    )


def as_of_condition(instant: str) -> str:
    """The WHERE clause that turns ``history`` into the state as of the SQL expression ``instant``."""
    return f"valid_from <= {instant} AND (valid_to IS NULL OR valid_to > {instant}) AND NOT deleted"


def as_of_predicate(instant: str) -> str:
    """``as_of_condition`` for an ISO 8601 instant (``2026-11-22T23:59:59.999Z``)."""
    return as_of_condition("'" + instant.replace("'", "''") + "'")


def to_duckdb(athena_sql: str) -> str:
    """The same statement in DuckDB's dialect."""
    (statement,) = sqlglot.transpile(athena_sql, read="athena", write="duckdb")
    return statement

"""The typed columns of a table's columnar (Parquet) snapshot, from its JSON Schema. Pure.

One column per top-level property of the item schema (the schema the stream consumer validates),
typed as the Athena tables type it (``changelake.formats.item_types``):

* ``string``: a string attribute; ``boolean``: a boolean;
* ``decimal``: a number whose schema bounds its digits (``DECIMAL(p, s)``);
* ``number``: any other number, as a string of its exact digits;
* ``json``: everything nested or not pinned to one type (maps, lists, sets, unions), as JSON text
  with every number's own digits.

Before those, the snapshot line's own fields: ``keys`` (the item's canonical key, JSON text),
``event_id``, ``event_time``, ``sequence_number`` (strings); after them ``item_rest``: the
attributes no column holds (not in the schema, or named so that a reader would not keep them
apart), as a JSON object's text, NULL when there are none. So a Parquet day holds the whole item.

A value that does not fit its column (a string where the schema says boolean, a number with more
digits than its ``DECIMAL``) is never converted: ``ColumnTypeError`` names the attribute, the value
and the type, and the day's Parquet is not written (``changelake.snapshot.parquet``). Numbers are
checked with ``decimal`` and handed to the writer as their exact digits, because a cast to a
narrower ``DECIMAL`` rounds (DuckDB gives ``CAST('1.239' AS DECIMAL(5,2)) = 1.24``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Literal

import orjson

from changelake.formats.item_types import ScalarType, item_typing, single_type

ColumnKind = Literal["string", "boolean", "decimal", "number", "json"]
#: The snapshot line's fields kept beside the item's columns, and the column of the rest of the item.
LINE_COLUMNS = ("keys", "event_id", "event_time", "sequence_number")
REST_COLUMN = "item_rest"
#: ``dt`` is the partition column of every reader (Athena, DuckDB hive_partitioning).
RESERVED = frozenset((*LINE_COLUMNS, REST_COLUMN, "dt"))
#: Enough digits for any DynamoDB number (38 significant, exponent -130 to +125) to be exact.
_EXACT = Context(prec=400)


class ColumnTypeError(ValueError):
    """An attribute's value does not fit its declared column type."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind
    precision: int = 0
    scale: int = 0

    @property
    def sql_type(self) -> str:
        """DuckDB's (and Parquet's logical) type."""
        if self.kind == "decimal":
            return f"DECIMAL({self.precision},{self.scale})"
        return "BOOLEAN" if self.kind == "boolean" else "VARCHAR"

    @property
    def hive_type(self) -> str:
        """Athena's (Glue's) type."""
        if self.kind == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return "boolean" if self.kind == "boolean" else "string"

    def text(self, value: Any) -> str | None:
        """``value`` (parsed by ``exact_loads``) as the text the writer casts to this column's type."""
        if value is None:
            return None
        if self.kind == "json":
            return orjson.dumps(value).decode()
        if self.kind == "string" and type(value) is str:
            return value
        if self.kind == "boolean" and type(value) is bool:
            return "true" if value else "false"
        if self.kind in ("number", "decimal") and type(value) is orjson.Fragment:
            digits = orjson.dumps(value).decode()
            return digits if self.kind == "number" else self._fitted(digits)
        raise ColumnTypeError(f"attribute {self.name!r}: {_shown(value)} is not a {self._declared}")

    def _fitted(self, digits: str) -> str:
        """``digits`` written with exactly ``scale`` decimals; ``ColumnTypeError`` if that would round or
        overflow ``DECIMAL(precision, scale)``."""
        number = Decimal(digits)
        try:
            fitted = number.quantize(Decimal(1).scaleb(-self.scale), context=_EXACT)
        except InvalidOperation:
            fitted = None
        if fitted is None or fitted != number or len(fitted.as_tuple().digits) > self.precision:
            raise ColumnTypeError(f"attribute {self.name!r}: {digits} does not fit {self._declared}")
        return format(fitted, "f")

    @property
    def _declared(self) -> str:
        return self.sql_type if self.kind == "decimal" else self.kind


@dataclass(frozen=True, slots=True)
class ColumnLayout:
    """The Parquet columns of one table, and a digest that changes whenever they do."""

    columns: tuple[Column, ...]
    digest: str
    item_names: frozenset[str]  # the attributes with a column of their own

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> ColumnLayout:
        typing = item_typing(dict(schema))
        typed = dict(typing.struct.fields) if typing.struct is not None else {}
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        names = [name for name in properties if isinstance(name, str)]
        columns = [Column(name, "string") for name in LINE_COLUMNS]
        for name in names:
            if name.lower() in RESERVED or (name not in typed and not _plain(name, names)):
                continue  # kept in item_rest
            columns.append(_column(name, typed.get(name), properties[name]))
        shape = json.dumps([[c.name, c.kind, c.precision, c.scale] for c in columns])
        digest = hashlib.sha256(shape.encode()).hexdigest()[:12]
        names_with_column = frozenset(column.name for column in columns[len(LINE_COLUMNS) :])
        return cls((*columns, Column(REST_COLUMN, "json")), digest, names_with_column)

    @property
    def item_columns(self) -> tuple[Column, ...]:
        return self.columns[len(LINE_COLUMNS) : -1]

    def row(self, key: str, line: Mapping[str, Any]) -> dict[str, str | None]:
        """The column texts of one snapshot line (parsed by ``exact_loads``) whose item key is ``key``."""
        item = line["item"]
        row: dict[str, str | None] = {"keys": key}
        for name in LINE_COLUMNS[1:]:
            value = line.get(name)
            row[name] = value if isinstance(value, str) else None
        for column in self.item_columns:
            row[column.name] = column.text(item.get(column.name))
        rest = {name: value for name, value in item.items() if name not in self.item_names}
        row[REST_COLUMN] = orjson.dumps(rest).decode() if rest else None
        return row


def _plain(name: str, names: list[str]) -> bool:
    """A name every reader keeps apart from the others (Athena lowercases column names)."""
    return name.isidentifier() and name.isascii() and sum(n.lower() == name.lower() for n in names) == 1


def _column(name: str, typed: Any, schema: Any) -> Column:
    if isinstance(typed, ScalarType) and typed.kind == "decimal":
        return Column(name, "decimal", typed.precision, typed.scale)
    if isinstance(typed, ScalarType) and typed.kind == "boolean":
        return Column(name, "boolean")
    if isinstance(typed, ScalarType):  # a string, or a number whose digits the schema does not bound
        return Column(name, "number" if single_type(schema) in ("integer", "number") else "string")
    return Column(name, "json")


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."

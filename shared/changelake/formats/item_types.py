"""Column types for an item from its table's JSON Schema (the one the stream consumer validates).

Pure functions. A number becomes ``DECIMAL(p, s)`` only where the schema guarantees that every valid
value fits: ``type: integer`` (scale 0) or ``multipleOf`` a power of ten (scale s), with both a lower
and an upper bound (precision from the larger bound's integer digits, plus s, at most 38). That is
``NumberRule.decimal`` (``formats.number_rules``), the rule the stream consumer checks numbers with,
exactly, so whatever it accepted fits. Any other number stays a string of its exact digits (the Hive
JSON SerDe reads a number's own text into a string column). Objects with ``properties`` become
structs, arrays with ``items`` arrays, and anything the schema does not pin down (no type, unions,
free-form objects, a ``$ref``: fastjsonschema checks the reference alone) is left out of the typed
columns and listed in ``untyped``; it is still in the record's JSON text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from changelake.formats.number_rules import MAX_PRECISION, NumberRule

#: Field names every reader accepts unquoted in a struct type (Hive lowercases them).
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class ScalarType:
    """``string``, ``boolean`` or ``decimal`` (with ``precision`` and ``scale``)."""

    kind: str
    precision: int = 0
    scale: int = 0


@dataclass(frozen=True)
class ArrayType:
    element: ItemType


@dataclass(frozen=True)
class StructType:
    fields: tuple[tuple[str, ItemType], ...]


ItemType = ScalarType | ArrayType | StructType
STRING = ScalarType("string")


@dataclass
class Typing:
    """The typed part of an item, and why the rest (paths like ``address.geo``) is not typed."""

    struct: StructType | None
    untyped: list[str] = field(default_factory=list)


def item_typing(schema: dict[str, Any]) -> Typing:
    """The struct type of one item described by ``schema`` (a JSON Schema of an object)."""
    untyped: list[str] = []
    typed = _typed(schema, "", untyped)
    return Typing(typed if isinstance(typed, StructType) and typed.fields else None, untyped)


def _typed(schema: Any, path: str, untyped: list[str]) -> ItemType | None:
    kind = single_type(schema)
    if kind == "string":
        return STRING
    if kind == "boolean":
        return ScalarType("boolean")
    if kind in ("integer", "number"):
        return _decimal(schema) or STRING
    if kind == "array" and isinstance(schema.get("items"), dict):
        element = _typed(schema["items"], f"{path}[]", untyped)
        return ArrayType(element) if element is not None else None
    if kind == "object" and isinstance(schema.get("properties"), dict):
        return _struct(schema["properties"], path, untyped)
    untyped.append(f"{path or '<item>'}: the schema does not give it one type with a fixed shape")
    return None


def _struct(properties: dict[str, Any], path: str, untyped: list[str]) -> StructType:
    fields: list[tuple[str, ItemType]] = []
    seen: set[str] = set()
    for name, schema in properties.items():
        where = f"{path}.{name}" if path else name
        if _FIELD_NAME.match(name) is None or name.lower() in seen:
            untyped.append(f"{where}: not a field name every reader keeps apart (letters, digits, _)")
            continue
        seen.add(name.lower())
        typed = _typed(schema, where, untyped)
        if typed is not None:
            fields.append((name, typed))
    return StructType(tuple(fields))


def single_type(schema: Any) -> str | None:
    """The schema's type, ignoring a ``null`` alternative; None for anything else, and for a node with a
    ``$ref``: fastjsonschema checks the reference alone, not the ``type`` beside it."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def _decimal(schema: dict[str, Any]) -> ScalarType | None:
    rule = NumberRule.of(schema)
    digits = rule.decimal() if rule is not None else None
    return ScalarType("decimal", *digits) if digits is not None else None


def hive_type(item_type: ItemType) -> str:
    """The Hive DDL spelling (Athena tables, Glue columns)."""
    if isinstance(item_type, ScalarType):
        if item_type.kind == "decimal":
            return f"decimal({item_type.precision},{item_type.scale})"
        return item_type.kind
    if isinstance(item_type, ArrayType):
        return f"array<{hive_type(item_type.element)}>"
    return "struct<" + ",".join(f"{name}:{hive_type(typed)}" for name, typed in item_type.fields) + ">"


__all__ = [
    "MAX_PRECISION",
    "ArrayType",
    "ItemType",
    "ScalarType",
    "StructType",
    "Typing",
    "hive_type",
    "item_typing",
    "single_type",
]

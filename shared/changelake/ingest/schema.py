"""Optional per-table JSON Schemas for item images, compiled once with fastjsonschema.

A schema file ``<table>.json`` in the schema folder describes one item of that table as plain JSON
(the ``new_image`` of a change record). REMOVE records carry no new image and are not checked.

fastjsonschema reads numbers as floats, which cannot tell ``1.2300000000000000001`` from ``1.23``:
the numeric keywords of the nodes the columns are typed from (the item, its ``properties`` and
``items``, all the way down) are checked exactly instead (``formats.number_rules``, the rule that
types the columns), so that whatever is accepted fits its ``DECIMAL``. A schema without them is
read as before, with floats: the checks cost only where there are numbers to check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changelake.exceptions import ConfigurationError, SchemaViolation
from changelake.formats.change_line import ChangeLine
from changelake.formats.number_rules import NumberChecks, checked_schema, loads_keeping_digits
from changelake.formats.schema_files import read_schemas

if TYPE_CHECKING:
    import fastjsonschema

Validator = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class TableSchema:
    """One table's checks: fastjsonschema's validator, and the numbers it does not check."""

    validate: Validator
    numbers: NumberChecks | None = None


class SchemaRegistry:
    """Checks by table name, all compiled at construction (cold start)."""

    def __init__(self, schemas: dict[str, TableSchema] | None = None) -> None:
        self._schemas = dict(schemas or {})

    @classmethod
    def from_directory(cls, directory: Path | None) -> SchemaRegistry:
        """Load every ``<table>.json`` in ``directory``; a bad file fails naming it."""
        if directory is None:
            return cls()
        schemas = read_schemas(directory)
        import fastjsonschema  # only with schemas: SCHEMA_DIR is unset by default (~17 ms of a cold start)

        compiled: dict[str, TableSchema] = {}
        for table, (name, schema) in schemas.items():
            try:
                rest, numbers = checked_schema(schema)
                compiled[table] = TableSchema(fastjsonschema.compile(rest), numbers)
            except (fastjsonschema.JsonSchemaDefinitionException, ValueError) as exc:
                raise ConfigurationError(f"SCHEMA_DIR: {name} is not a valid JSON Schema: {exc}") from exc
        return cls(compiled)

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(self._schemas)

    def check(self, change: ChangeLine) -> None:
        """Raise ``SchemaViolation`` if ``change``'s new image breaks its table's schema."""
        schema = self._schemas.get(change.table)
        if schema is None:
            return
        loads = json.loads if schema.numbers is None else loads_keeping_digits
        new_image = loads(change.line)["new_image"]
        if new_image is None:
            return
        try:
            schema.validate(new_image)
        except _value_exception() as exc:
            raise SchemaViolation(exc.message, _image_path(exc.name or "data")) from exc
        if schema.numbers is not None:
            found = schema.numbers.violation(new_image)
            if found is not None:
                path, reason = found
                raise SchemaViolation(reason, _image_path(path))


def _image_path(path: str) -> str:
    """fastjsonschema's ``data.amount`` as the change record's ``new_image.amount``."""
    return path.replace("data", "new_image", 1)


def _value_exception() -> type[fastjsonschema.JsonSchemaValueException]:
    """fastjsonschema's violation error (imported already: a validator exists only after a compile)."""
    import fastjsonschema

    return fastjsonschema.JsonSchemaValueException

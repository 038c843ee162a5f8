"""Optional per-table JSON Schemas for item images, compiled once with fastjsonschema.

A schema file ``<table>.json`` in the schema folder describes one item of that table as plain JSON
(the ``new_image`` of a change record). REMOVE records carry no new image and are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changelake.exceptions import ConfigurationError, SchemaViolation
from changelake.formats.change_line import ChangeLine
from changelake.formats.schema_files import read_schemas

if TYPE_CHECKING:
    import fastjsonschema

Validator = Callable[[Any], Any]


class SchemaRegistry:
    """Validators by table name, all compiled at construction (cold start)."""

    def __init__(self, validators: dict[str, Validator] | None = None) -> None:
        self._validators = dict(validators or {})

    @classmethod
    def from_directory(cls, directory: Path | None) -> SchemaRegistry:
        """Load every ``<table>.json`` in ``directory``; a bad file fails naming the file."""
        if directory is None:
            return cls()
        schemas = read_schemas(directory)
        import fastjsonschema  # only with schemas: SCHEMA_DIR is unset by default (~17 ms of a cold start)

        validators: dict[str, Validator] = {}
        for table, (name, schema) in schemas.items():
            try:
                validators[table] = fastjsonschema.compile(schema)
            except fastjsonschema.JsonSchemaDefinitionException as exc:
                raise ConfigurationError(f"SCHEMA_DIR: {name} is not a valid JSON Schema: {exc}") from exc
        return cls(validators)

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(self._validators)

    def check(self, change: ChangeLine) -> None:
        """Raise ``SchemaViolation`` if ``change``'s new image breaks its table's schema."""
        validator = self._validators.get(change.table)
        if validator is None:
            return
        new_image = json.loads(change.line)["new_image"]
        if new_image is None:
            return
        try:
            validator(new_image)
        except _value_exception() as exc:
            path = (exc.name or "data").replace("data", "new_image", 1)
            raise SchemaViolation(exc.message, path) from exc


def _value_exception() -> type[fastjsonschema.JsonSchemaValueException]:
    """fastjsonschema's violation error (imported already: a validator exists only after a compile)."""
    import fastjsonschema

    return fastjsonschema.JsonSchemaValueException

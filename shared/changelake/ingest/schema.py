"""Optional per-table JSON Schemas for item images, compiled once with fastjsonschema.

A schema file ``<table>.json`` in the schema folder describes one item of that table as plain JSON
(the ``new_image`` of a change record). REMOVE records carry no new image and are not checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

from changelake.exceptions import ConfigurationError, SchemaViolation
from changelake.formats.change_line import ChangeLine

Validator = Callable[[Any], Any]


def read_schemas(directory: Path | None) -> dict[str, tuple[str, Any]]:
    """(file name, parsed JSON) of every ``<table>.json`` in ``directory``, by table; a file that is not
    JSON fails naming it. The consumer validates with them; the snapshot types its Parquet columns."""
    if directory is None:
        return {}
    if not directory.is_dir():
        raise ConfigurationError(f"SCHEMA_DIR: {directory} is not a directory")
    schemas: dict[str, tuple[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            schemas[path.stem] = (path.name, json.loads(path.read_text()))
        except ValueError as exc:
            raise ConfigurationError(f"SCHEMA_DIR: {path.name} is not a valid JSON Schema: {exc}") from exc
    return schemas


class SchemaRegistry:
    """Validators by table name, all compiled at construction (cold start)."""

    def __init__(self, validators: dict[str, Validator] | None = None) -> None:
        self._validators = dict(validators or {})

    @classmethod
    def from_directory(cls, directory: Path | None) -> SchemaRegistry:
        """Load every ``<table>.json`` in ``directory``; a bad file fails naming the file."""
        validators: dict[str, Validator] = {}
        for table, (name, schema) in read_schemas(directory).items():
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
        except fastjsonschema.JsonSchemaValueException as exc:
            path = (exc.name or "data").replace("data", "new_image", 1)
            raise SchemaViolation(exc.message, path) from exc

"""The schema folder (``SCHEMA_DIR``): one JSON Schema per table, ``<table>.json``, describing one
item of that table as plain JSON. Read by the stream consumer (validation, ``ingest.schema``) and
the snapshot function (Parquet column types, ``snapshot.columns``), so neither imports the other."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from changelake.exceptions import ConfigurationError


def parse_schema(text: str) -> Any:
    """A schema's JSON with every number exact: ``Decimal`` where it has a fraction or an exponent (a
    float would make ``0.100000000000000000001`` 0.1 and ``1E+400`` infinite), ``int`` otherwise.
    ``ValueError`` if it is not JSON."""
    return json.loads(text, parse_float=Decimal)


def read_schemas(directory: Path | None) -> dict[str, tuple[str, Any]]:
    """(file name, parsed JSON, ``parse_schema``) of every ``<table>.json`` in ``directory``, by table; a
    file that is not JSON fails naming it. The consumer validates with them; the snapshot types its
    Parquet columns."""
    if directory is None:
        return {}
    if not directory.is_dir():
        raise ConfigurationError(f"SCHEMA_DIR: {directory} is not a directory")
    schemas: dict[str, tuple[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            schemas[path.stem] = (path.name, parse_schema(path.read_text()))
        except ValueError as exc:
            raise ConfigurationError(f"SCHEMA_DIR: {path.name} is not a valid JSON Schema: {exc}") from exc
    return schemas

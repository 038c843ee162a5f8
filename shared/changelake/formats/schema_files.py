"""The schema folder (``SCHEMA_DIR``): one JSON Schema per table, ``<table>.json``, describing one
item of that table as plain JSON. Read by the stream consumer (validation, ``ingest.schema``) and
the snapshot function (Parquet column types, ``snapshot.columns``), so neither imports the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from changelake.exceptions import ConfigurationError


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

"""What a query over the lake needs to know: where it is, and each DynamoDB table's key and schema.

Plain validated values; a bad one raises ``DefinitionError`` naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from changelake.exceptions import UnsafeNameError
from changelake.formats.layout import check_table_name
from changelake.formats.schema_files import parse_schema

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
#: Athena database and table names: lowercase letters, digits and underscores.
_GLUE_NAME = re.compile(r"[a-z0-9_]{1,255}\Z")
#: Key attributes become column names and JSON paths in both engines, so they stay plain.
_KEY_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
#: The views' own columns; a key attribute may not take one of these names.
VIEW_COLUMNS = frozenset(
    {"table", "keys", "event_id", "event_name", "event_time", "sequence_number", "record"}
    | {"valid_from", "valid_to", "deleted", "dt", "hour"}
)
#: First day partition projection lists when none is given: before any change this code wrote.
DEFAULT_SINCE = date(2026, 1, 1)


class DefinitionError(ValueError):
    """A lake or table definition that cannot be rendered; the message names the field."""


@dataclass(frozen=True)
class Lake:
    """The bucket, its layer prefixes (docs/architecture.md's defaults), and the Athena database."""

    bucket: str
    database: str = "changelake"
    raw_prefix: str = "raw"
    compacted_prefix: str = "compacted"
    snapshot_prefix: str = "snapshot"
    #: The Parquet snapshots (SnapshotFunction's PARQUET_SNAPSHOT_PREFIX), for tables with a JSON Schema.
    parquet_prefix: str = "snapshot-parquet"
    since: date = DEFAULT_SINCE

    def __post_init__(self) -> None:
        if _BUCKET.match(self.bucket) is None:
            raise DefinitionError(f"bucket: {self.bucket!r} is not an S3 bucket name")
        if _GLUE_NAME.match(self.database) is None:
            raise DefinitionError(f"database: {self.database!r} must be lowercase letters, digits and _")
        for name in ("raw_prefix", "compacted_prefix", "snapshot_prefix", "parquet_prefix"):
            if _PREFIX.match(getattr(self, name)) is None:
                raise DefinitionError(f"{name}: {getattr(self, name)!r} is not a folder path")

    def location(self, prefix: str, table: str) -> str:
        return f"s3://{self.bucket}/{prefix}/{table}/"


@dataclass(frozen=True)
class LakeTable:
    """One DynamoDB table in the lake: its key attributes and, optionally, its item JSON Schema."""

    name: str
    key_attributes: tuple[str, ...] = ("pk", "sk")
    item_schema: dict[str, Any] | None = None
    #: The prefix of its tables' and views' names in Athena; by default made from ``name``.
    alias: str | None = None

    def __post_init__(self) -> None:
        try:
            check_table_name(self.name)
        except UnsafeNameError as exc:
            raise DefinitionError(f"table: {exc}") from None
        if not 1 <= len(self.key_attributes) <= 2:
            raise DefinitionError(f"keys of {self.name}: a DynamoDB key has one or two attributes")
        for attribute in self.key_attributes:
            if _KEY_ATTRIBUTE.match(attribute) is None or attribute.lower() in VIEW_COLUMNS:
                raise DefinitionError(
                    f"keys of {self.name}: {attribute!r} must be letters, digits and _ "
                    f"and not one of the views' columns ({', '.join(sorted(VIEW_COLUMNS))})"
                )
        if self.alias is not None and _GLUE_NAME.match(self.alias) is None:
            raise DefinitionError(
                f"alias of {self.name}: {self.alias!r} must be lowercase letters, digits and _"
            )
        if len({a.lower() for a in self.key_attributes}) != len(self.key_attributes):
            raise DefinitionError(f"keys of {self.name}: attribute names differ only in case")

    @property
    def athena_name(self) -> str:
        """The prefix of the table's names in Athena: ``alias``, or ``name`` lowercased, other than
        letters and digits as ``_``."""
        return self.alias or re.sub(r"[^a-z0-9]", "_", self.name.lower())


def parse_table_option(text: str, schema_dir: Path | None) -> LakeTable:
    """``orders``, ``orders:pk,sk`` (key attributes, default ``pk,sk``), ``my-table:pk=mine`` (Athena
    name ``mine``); its JSON Schema is ``<schema_dir>/<name>.json`` if there is one."""
    text, _, alias = text.partition("=")
    name, _, keys = text.partition(":")
    attributes = tuple(keys.split(",")) if keys else LakeTable.key_attributes
    schema = None
    if schema_dir is not None and (schema_dir / f"{name}.json").is_file():
        path = schema_dir / f"{name}.json"
        try:
            schema = parse_schema(path.read_text())  # numbers exact, as the consumer checks them
        except ValueError as exc:
            raise DefinitionError(f"schema of {name}: {path} is not JSON: {exc}") from None
    return LakeTable(name, attributes, schema, alias or None)


def check_distinct(tables: list[LakeTable]) -> None:
    """Two DynamoDB tables may not share an Athena name (``a-b`` and ``a.b`` both become ``a_b``)."""
    seen: dict[str, str] = {}
    for table in tables:
        other = seen.setdefault(table.athena_name, table.name)
        if other != table.name:
            raise DefinitionError(f"table: {other!r} and {table.name!r} both become {table.athena_name!r}")

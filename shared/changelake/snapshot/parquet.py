"""Columnar snapshots: each published snapshot day of a table with a JSON Schema, as Parquet.

Layout, a sibling of ``snapshot/`` so that neither the JSON readers (``dt=*/*.jsonl.gz``) nor the
JSON tables of Athena/Glue ever see a Parquet file::

    <parquet prefix>/<table>/dt=YYYY-MM-DD/part-<generation>-00000.parquet   typed columns (columns.py)
    <parquet prefix>/<table>/dt=YYYY-MM-DD/_manifest.json                    commit record (not data)

A Parquet day is *derived* from its published JSON day: its ``<generation>`` digests the JSON day's
generation and the column layout, and it is read from exactly the files the JSON day's manifest
names, so the same JSON day and schema always give the same keys. It is published by its own
``changelake.publication.Publication`` (uploads left open, conditional commit of the manifest,
guarded promotion), so a reader of the files the manifest names sees the previous Parquet day,
then this one, never a mix (a glob of the folder may see both for the moment between the first
completion and the last delete, as for the JSON days); a run that dies before the commit leaves
the previous Parquet day, and the next run that checks the JSON day derives the Parquet again (a
stale generation), one that dies after the commit is rolled forward. A Parquet day whose
generation is current is not rewritten.

The writer is DuckDB (chosen by measurement, docs/snapshot.md): rows go to a local JSON Lines file
of column texts (every value a string or null), and ``COPY ... TO (FORMAT parquet)`` casts each
column to its type. Every decimal was checked exact beforehand (``Column.text``), so the cast never
rounds. A Parquet file is cut after ``source_bytes`` of those texts, bounding the scratch space.

Delivery guarantee: once ``refresh`` returns ``built``, ``completed`` or ``unchanged``, the Parquet
day holds every item of the JSON day it names, exactly once. A value that does not fit its column
raises ``SnapshotInputError`` naming the JSON file, line and attribute; nothing is published.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from changelake.exceptions import (
    ConfigurationError,
    SnapshotInputError,
)
from changelake.formats.layout import day_prefix, part_name
from changelake.formats.schema_files import read_schemas
from changelake.integrations.base import MultipartStore
from changelake.publication import Generation, Manifest, OpenUploads, Output, Publication, Written, publish
from changelake.snapshot.columns import ColumnLayout, ColumnTypeError
from changelake.snapshot.lines import base_key, exact_loads
from changelake.snapshot.manifest import DayManifest
from changelake.storage.io import UPLOAD_PART_BYTES, Prefetcher, split_lines

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
#: Column texts per Parquet file before the next starts: bounds the scratch file and DuckDB's work.
#: bench.rows.snapshot_parquet (docs/snapshot.md), DuckDB 2.0.0 as the layer ships it: a 400 MB day
#: became 2 files at 308 MiB peak RSS, 50 MB 1 file at 187 MiB, well inside the function's 1,769 MB
#: and 2 GiB of /tmp.
SOURCE_BYTES = 256 * 1024 * 1024
#: DuckDB's own memory limit: past it, it spills to the scratch folder instead of growing.
DUCKDB_MEMORY_LIMIT = "256MB"
FORMAT = 1

ParquetStatus = Literal["built", "completed", "unchanged"]


@dataclass(frozen=True, slots=True)
class ParquetDay:
    """What ``refresh`` did to one Parquet day."""

    status: ParquetStatus
    generation: str
    rows: int = 0
    bytes: int = 0
    files: int = 0


@dataclass(slots=True)
class _File:
    key: str
    upload_id: str
    part_etags: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0

    def document(self) -> dict[str, Any]:
        return Output(self.key, self.upload_id, tuple(self.part_etags)).document() | {
            "rows": self.rows,
            "bytes": self.bytes,
        }


def layouts_from_directory(directory: Path | None) -> dict[str, ColumnLayout]:
    """The column layout of every table with a JSON Schema in ``directory`` (``SCHEMA_DIR``)."""
    layouts = {}
    for table, (name, schema) in read_schemas(directory).items():
        if not isinstance(schema, dict):
            raise ConfigurationError(f"SCHEMA_DIR: {name} is not a JSON Schema of an object")
        layouts[table] = ColumnLayout.from_schema(schema)
    return layouts


def parquet_generation(day: DayManifest, layout: ColumnLayout) -> str:
    """The generation of the Parquet of ``day`` in ``layout``: changes with either."""
    text = f"parquet {FORMAT}\n{day.generation}\n{layout.digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ParquetSnapshots:
    """Derives ``<prefix>/<table>/dt=D/`` from the published JSON snapshot day (see the module): a
    ``changelake.snapshot.derived.DerivedFormat``."""

    name = "parquet"

    def __init__(
        self,
        store: MultipartStore,
        layouts: Mapping[str, ColumnLayout],
        *,
        prefix: str = "snapshot-parquet",
        scratch_dir: Path = Path("/tmp"),  # noqa: S108 - Lambda's scratch space
        source_bytes: int = SOURCE_BYTES,
    ) -> None:
        self.store = store
        self.layouts = dict(layouts)
        self.prefix = prefix
        self.scratch_dir = scratch_dir
        self.source_bytes = source_bytes

    def publication(self, table: str, day: date) -> Publication:
        return Publication(self.store, day_prefix(self.prefix, table, day))

    def refresh(self, day: DayManifest) -> ParquetDay | None:
        """Bring the Parquet of the published JSON ``day`` up to date; None for a table without schema."""
        layout = self.layouts.get(day.table)
        if layout is None:
            return None
        outcome = publish(_ParquetGeneration(self, day, layout))
        if outcome.built is not None:
            return outcome.built
        status: ParquetStatus = "completed" if outcome.status == "completed" else "unchanged"
        return ParquetDay(status, parquet_generation(day, layout))

    def write_day(
        self, day: DayManifest, layout: ColumnLayout, folder: str, uploads: OpenUploads
    ) -> Written[ParquetDay]:
        """Every item of the JSON day as open uploads of Parquet files, in key order, and the
        manifest body that names them."""
        generation = parquet_generation(day, layout)
        files: list[_File] = []
        uploads.on_abort(lambda: self._abort(files))
        with tempfile.TemporaryDirectory(dir=self.scratch_dir, prefix="parquet-") as scratch:
            writer = ParquetWriter(layout, Path(scratch))
            for row in self._rows(day, layout):
                writer.add(row)
                if writer.source_bytes >= self.source_bytes:
                    files.append(self._upload(writer.finish(), folder, generation, len(files)))
            if writer.rows or not files:
                files.append(self._upload(writer.finish(), folder, generation, len(files)))
        rows = sum(file.rows for file in files)
        body = {
            "table": day.table,
            "dt": day.dt,
            "generation": generation,
            "snapshot_generation": day.generation,
            "columns": [[column.name, column.sql_type] for column in layout.columns],
            "rows": rows,
            "outputs": [file.document() for file in files],
        }
        built = ParquetDay("built", generation, rows, sum(f.bytes for f in files), len(files))
        return Written(body, built)

    def _rows(self, day: DayManifest, layout: ColumnLayout) -> Iterator[dict[str, str | None]]:
        keys = [part.key for part in day.outputs]
        with Prefetcher(self.store, keys) as prefetcher:
            for key, chunks in zip(keys, prefetcher.chunks(), strict=True):
                for number, line in enumerate(split_lines(chunks), start=1):
                    where = f"s3://{self.store.bucket}/{key} line {number}"
                    item_key = base_key(line)
                    if item_key is None:
                        raise SnapshotInputError(f"{where}: not a snapshot line")
                    try:
                        yield layout.row(item_key, exact_loads(line))
                    except ColumnTypeError as exc:
                        raise SnapshotInputError(f"{where}: {exc}") from exc

    def _upload(self, written: _Written, folder: str, generation: str, index: int) -> _File:
        key = folder + part_name(generation, index, ".parquet")
        upload_id = self.store.create_multipart(
            key, content_type=PARQUET_CONTENT_TYPE, metadata={"generation": generation}
        )
        file = _File(key, upload_id, rows=written.rows, bytes=written.path.stat().st_size)
        try:
            with written.path.open("rb") as body:
                while chunk := body.read(UPLOAD_PART_BYTES):
                    number = len(file.part_etags) + 1
                    file.part_etags.append(self.store.upload_part(key, upload_id, number, chunk))
        except BaseException:
            self.store.abort_multipart(key, upload_id)
            raise
        finally:
            written.path.unlink(missing_ok=True)
        return file

    def _abort(self, files: list[_File]) -> None:
        for file in files:
            self.store.abort_multipart(file.key, file.upload_id)


@dataclass(frozen=True, slots=True)
class _Written:
    path: Path
    rows: int


class ParquetWriter:
    """Rows of column texts -> local Parquet files, one per ``finish`` (DuckDB, in this process)."""

    def __init__(self, layout: ColumnLayout, scratch: Path) -> None:
        self.layout = layout
        self.scratch = scratch
        self.rows = 0
        self.source_bytes = 0
        self._files = 0
        self._source: IO[bytes] | None = None

    def add(self, row: Mapping[str, str | None]) -> None:
        if self._source is None:
            self._source = (self.scratch / "rows.jsonl").open("wb")
        data = orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        self._source.write(data)
        self.rows += 1
        self.source_bytes += len(data)

    def finish(self) -> _Written:
        """The rows added since the last ``finish`` as one Parquet file (it may hold no row)."""
        source = self.scratch / "rows.jsonl"
        if self._source is not None:
            self._source.close()
            self._source = None
        else:
            source.write_bytes(b"")
        target = self.scratch / f"{self._files:05d}.parquet"
        import duckdb  # only a table with a JSON Schema gets Parquet: no run pays its import otherwise

        connection = duckdb.connect(
            config={"threads": 1, "memory_limit": DUCKDB_MEMORY_LIMIT, "temp_directory": str(self.scratch)}
        )
        try:
            connection.execute(self._copy(source, target))
        finally:
            connection.close()
        written = _Written(target, self.rows)
        source.unlink()
        self._files += 1
        self.rows = self.source_bytes = 0
        return written

    def _copy(self, source: Path, target: Path) -> str:
        """``COPY`` of the column texts to Parquet, each cast to its type (names are plain identifiers,
        paths are this writer's own)."""
        texts = ", ".join(f"'{column.name}': 'VARCHAR'" for column in self.layout.columns)
        typed = ", ".join(
            f'CAST("{column.name}" AS {column.sql_type}) AS "{column.name}"' for column in self.layout.columns
        )
        rows = f"read_json({_literal(source)}, format = 'newline_delimited', columns = {{{texts}}})"
        options = "FORMAT parquet, COMPRESSION zstd"
        return f"COPY (SELECT {typed} FROM {rows}) TO {_literal(target)} ({options})"  # noqa: S608


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class _ParquetGeneration(Generation[str, ParquetDay]):
    """The Parquet of one published JSON day as a generation: its name digests the JSON day's and
    the column layout's."""

    def __init__(self, snapshots: ParquetSnapshots, day: DayManifest, layout: ColumnLayout) -> None:
        self.snapshots = snapshots
        self.day = day
        self.layout = layout
        self.publication = snapshots.publication(day.table, date.fromisoformat(day.dt))

    def plan(self, current: Manifest | None) -> str:
        return parquet_generation(self.day, self.layout)

    def is_current(self, plan: str, current: Manifest) -> bool:
        return current.body.get("generation") == plan

    def write(self, plan: str, uploads: OpenUploads) -> Written[ParquetDay]:
        return self.snapshots.write_day(self.day, self.layout, self.publication.folder, uploads)

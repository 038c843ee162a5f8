"""The commit records of the snapshot layer, typed: one per day, one per bootstrap.

``<snapshot>/<table>/dt=YYYY-MM-DD/_manifest.json`` names what the day was built from (the raw/
objects of the day, and the base: the previous day's generation, the bootstrap's, or empty), the
generation that input gives, the files that hold the day, and the files under ``_removed/`` that
hold the keys whose latest change is a REMOVE (not data: the next day reads them).
``<snapshot>/<table>/_bootstrap/_manifest.json`` does the same for a table's bootstrap export.
Names starting with ``_`` are not data (docs/contracts.md, "S3 layout").

Generations are digests of the inputs, so the same inputs always give the same object keys, and a
day is stale exactly when its generation differs from what its inputs give now: a late raw/ file
changes the day's inputs, and a rebuilt day changes the base, hence the generation, of the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from changelake.formats.layout import DATA_PREFIX
from changelake.integrations.s3 import ObjectInfo
from changelake.publication import SideFiles
from changelake.storage.parts import OpenPart

#: Bumped when the snapshot line or the build changes, so every day checked is rebuilt in the new
#: form. 2: days carry their removed keys (``REMOVED_FILES``) and a change older (by sequence
#: number) than the previous day's state of its item is not applied.
FORMAT = 2
#: The bootstrap's own generation, unchanged since its first form (a bootstrap is never rebuilt
#: for a change of the days' build).
BOOTSTRAP_FORMAT = 1
#: A day's removed keys: one line per key whose latest change is a REMOVE (the snapshot line of
#: that change, ``"item": null``), in key order, under ``_removed/`` (a ``_`` folder: not data),
#: named in the manifest's ``removed``. The next day needs them: a change stamped after midnight
#: but older by sequence number than the REMOVE must not bring the item back.
REMOVED_FOLDER = "_removed/"
REMOVED_FILES = SideFiles("removed", REMOVED_FOLDER + DATA_PREFIX)


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=1).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Self | None:
        """The document in ``body``, or None if it is not one (then it is rebuilt and replaced)."""
        try:
            return cls.model_validate_json(body)
        except ValidationError:
            return None

    def body(self) -> dict[str, Any]:
        """As the JSON object ``changelake.publication.Publication.commit`` writes."""
        return self.model_dump(mode="json")

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self | None:
        """The document a ``Publication`` read, or None if it is not one."""
        try:
            return cls.model_validate(body)
        except ValidationError:
            return None


class FileRef(_Document):
    """An input object as listed: its key, ETag and size."""

    key: str
    etag: str
    size: int

    @classmethod
    def of(cls, info: ObjectInfo) -> FileRef:
        return cls(key=info.key, etag=info.etag, size=info.size)


class OutputPart(_Document):
    """A data file of a snapshot, uploaded and left open until the manifest is committed."""

    key: str
    rows: int
    bytes: int
    uncompressed_bytes: int
    upload_id: str
    part_etags: tuple[str, ...]
    #: The bucket (``changelake.snapshot.buckets``) of a day built in buckets that wrote this file;
    #: None for a day built in one invocation (and in manifests from before buckets).
    piece: int | None = None

    @classmethod
    def of(cls, part: OpenPart, piece: int | None = None) -> OutputPart:
        return cls(
            key=part.key,
            rows=part.rows,
            bytes=part.bytes,
            uncompressed_bytes=part.uncompressed_bytes,
            upload_id=part.upload_id,
            part_etags=part.part_etags,
            piece=piece,
        )


class BaseRef(_Document):
    """What a day was built on: nothing, the bootstrap export, or the snapshot of the day before."""

    kind: Literal["empty", "bootstrap", "snapshot"]
    generation: str = ""
    dt: str | None = None  # the day of a ``snapshot`` base

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.dt or ''}:{self.generation}"


EMPTY_BASE = BaseRef(kind="empty")


class DayCounts(_Document):
    """What building a day did."""

    items: int = 0
    changes_read: int = 0
    duplicates: int = 0
    changes_applied: int = 0
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    kept: int = 0
    outdated: int = 0  # changes older (by sequence number) than the state of the day before: not applied
    removed_keys: int = 0  # keys whose latest change is a REMOVE, in the day's removed-keys files
    bytes_in: int = 0
    bytes_out: int = 0
    uncompressed_bytes_out: int = 0
    spilled_runs: int = 0
    hours_from_compacted: int = 0  # hours whose changes were read from compacted/ rather than raw/


class Published(_Document):
    """What every commit record holds: a generation and the files that make it up."""

    format: int = FORMAT
    table: str
    generation: str
    outputs: tuple[OutputPart, ...] = ()


class DayManifest(Published):
    """The commit record of one day's snapshot."""

    dt: str
    base: BaseRef
    inputs: tuple[FileRef, ...]
    removed: tuple[OutputPart, ...] = ()  # the removed keys' files (``REMOVED_FILES``): not data
    counts: DayCounts
    built_at: str
    seconds: float
    #: How many buckets the day was built in (each output names its ``piece``): its files are then
    #: sorted by key within each bucket, not across them. None: one invocation built it, one order.
    buckets: int | None = None

    @property
    def day(self) -> date:
        return date.fromisoformat(self.dt)

    def as_base(self) -> BaseRef:
        return BaseRef(kind="snapshot", generation=self.generation, dt=self.dt)


class Gap(_Document):
    """The lake's first change of a table against a bootstrap export's time.

    ``missing_possible``: the first change is later than the export, so changes made between the
    two may be in neither (the stream was enabled after the export, or its records expired).
    """

    export_time: str
    first_change: str | None
    missing_possible: bool


class BootstrapManifest(Published):
    """The commit record of a table's bootstrap: the export it was read from, as the base of its
    first day (the export's UTC day)."""

    export_summary: str  # s3:// URL of manifest-summary.json
    export_arn: str
    export_time: str
    key_attributes: tuple[str, ...]
    files: tuple[FileRef, ...]
    items: int
    gap: Gap
    bootstrapped_at: str

    @property
    def day(self) -> date:
        return date.fromisoformat(self.export_time[:10])

    def as_base(self) -> BaseRef:
        return BaseRef(kind="bootstrap", generation=self.generation)


def _digest(lines: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:20]


def _file_lines(files: Sequence[ObjectInfo | FileRef]) -> list[str]:
    return [f"{item.key}\t{item.etag}\t{item.size}" for item in sorted(files, key=lambda item: item.key)]


def day_generation(table: str, day: date, base: BaseRef, inputs: Sequence[ObjectInfo | FileRef]) -> str:
    """The generation of ``table`` on ``day`` built on ``base`` from the raw/ objects ``inputs``."""
    return _digest([f"snapshot {FORMAT}", table, day.isoformat(), base.text, *_file_lines(inputs)])


def bootstrap_generation(
    table: str, export_arn: str, key_attributes: Sequence[str], files: Sequence[ObjectInfo | FileRef]
) -> str:
    """The generation of a bootstrap of ``table`` from the export's data ``files``."""
    return _digest(
        [f"bootstrap {BOOTSTRAP_FORMAT}", table, export_arn, ",".join(key_attributes), *_file_lines(files)]
    )

"""The manifest of a compacted partition (``_manifest.json``): the commit record of one generation.

It names the raw inputs the generation was built from (key, ETag, size), the part files it
consists of with the open multipart uploads that become them (``changelake.publication`` completes
those), and the counts of the build. ``CompactionManifest.to_json`` is the document committed;
``from_json`` reads one back, or gives None for a document it cannot vouch for (another format, a
field missing or of the wrong type), which compaction then rebuilds and replaces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, astuple, dataclass
from datetime import date, datetime
from typing import Any

from changelake.exceptions import UnsafeNameError
from changelake.formats.layout import DATA_PREFIX, Partition, check_table_name
from changelake.integrations.base import ObjectInfo
from changelake.storage.parts import OpenPart

PART_PREFIX = DATA_PREFIX
MANIFEST_FORMAT = 1


def generation_of(inputs: Sequence[ObjectInfo]) -> str:
    """The generation name of a set of raw inputs: equal inputs, equal output keys."""
    text = "\n".join(f"{item.key}\t{item.etag}\t{item.size}" for item in sorted(inputs, key=lambda i: i.key))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def inputs_document(inputs: Sequence[ObjectInfo]) -> list[dict[str, Any]]:
    """A manifest's ``inputs``: each raw object's key, ETag and size, as listed (``changelake status``
    compares it with a listing too)."""
    return [{"key": item.key, "etag": item.etag, "size": item.size} for item in inputs]


@dataclass(frozen=True, slots=True)
class Counts:
    """What building a generation counted: lines read and written, and bytes (gzip) in and out."""

    rows_in: int = 0
    rows_out: int = 0
    duplicates_removed: int = 0
    conflicts: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def __add__(self, other: Counts) -> Counts:
        """The counts of two builds together (the slices of one hour: each change is in one slice)."""
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def document(self) -> dict[str, int]:
        """The counts as a manifest's (and a summary's) fields."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CompactionManifest:
    """The commit record of one generation of a partition of compacted/."""

    partition: Partition
    generation: str
    compacted_at: datetime
    seconds: float
    inputs: tuple[ObjectInfo, ...]
    outputs: tuple[OpenPart, ...]
    counts: Counts

    def has_inputs(self, inputs: Sequence[ObjectInfo]) -> bool:
        """Whether this generation was built from exactly ``inputs`` (as listed, in key order)."""
        return self.inputs == tuple(inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "table": self.partition.table,
            "dt": self.partition.dt.isoformat(),
            "hour": f"{self.partition.hour:02d}",
            "generation": self.generation,
            "compacted_at": self.compacted_at.isoformat().replace("+00:00", "Z"),
            "seconds": self.seconds,
            "inputs": inputs_document(self.inputs),
            "outputs": [part.to_json() for part in self.outputs],
            **self.counts.document(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> CompactionManifest | None:
        """The manifest in ``document``, or None if it is not one of this format."""
        try:
            return cls._read(document)
        except (ValueError, TypeError, UnsafeNameError):
            return None

    @classmethod
    def _read(cls, fields: Mapping[str, Any]) -> CompactionManifest:
        if fields.get("format") != MANIFEST_FORMAT:
            raise ValueError("another manifest format")
        partition = Partition(
            check_table_name(fields.get("table")),
            date.fromisoformat(_text(fields, "dt")),
            int(_text(fields, "hour")),
        )
        seconds = fields.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise TypeError("seconds must be a number")
        return cls(
            partition=partition,
            generation=_text(fields, "generation"),
            compacted_at=datetime.fromisoformat(_text(fields, "compacted_at").replace("Z", "+00:00")),
            seconds=float(seconds),
            inputs=tuple(_input(item) for item in _list(fields, "inputs")),
            outputs=tuple(read_open_part(item) for item in _list(fields, "outputs")),
            counts=Counts(**{name: _count(fields, name) for name in Counts.__dataclass_fields__}),
        )


def read_open_part(document: object) -> OpenPart:
    """The open part a manifest's ``outputs`` entry (``OpenPart.to_json``) describes."""
    fields = _mapping(document)
    etags = fields.get("part_etags")
    if not isinstance(etags, list) or not all(isinstance(etag, str) for etag in etags):
        raise ValueError("part_etags must be a list of strings")
    return OpenPart(
        _text(fields, "key"),
        _text(fields, "upload_id"),
        tuple(etags),
        _count(fields, "rows"),
        _count(fields, "bytes"),
        _count(fields, "uncompressed_bytes"),
    )


def _input(document: object) -> ObjectInfo:
    fields = _mapping(document)
    return ObjectInfo(_text(fields, "key"), _text(fields, "etag"), _count(fields, "size"))


def _mapping(document: object) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise TypeError("an object was expected")
    return document


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value


def _count(fields: Mapping[str, Any], name: str) -> int:
    value = fields.get(name)
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _list(fields: Mapping[str, Any], name: str) -> list[Any]:
    value = fields.get(name)
    if not isinstance(value, list):
        raise TypeError(f"{name} must be a list")
    return value

"""The S3 layout of docs/contracts.md: Hive-style hourly partitions, quarantine, claim checks, loss reports.

Pure functions only, but for ``lake_tables``, which lists through the store it is given. Every key
is built here, so a table name or key value can never escape its folder: table names must be
DynamoDB-legal names, which are also safe path segments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from changelake.exceptions import UnsafeNameError

# DynamoDB's own rule for table names: 3 to 255 of [A-Za-z0-9_.-]; "..." and friends are refused
# too, since some tools treat dot-only segments as relative paths.
_TABLE_NAME = re.compile(r"(?!\.+\Z)[A-Za-z0-9_.\-]{3,255}\Z")
_PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/\Z")
_DAY_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/\Z")

#: What every data file of a published folder is named from (``changelake.publication``):
#: ``part-<generation>-<index>`` and the format's suffix.
DATA_PREFIX = "part-"
#: The folder of a table's bootstrap export in the snapshot layer (not data: it starts with ``_``).
BOOTSTRAP_FOLDER = "_bootstrap"

#: The quarantine folder for records whose table cannot be read (DynamoDB names are >= 3 chars).
UNKNOWN_TABLE = "_"


def check_table_name(name: object) -> str:
    """``name`` if it is a legal DynamoDB table name (and so a safe path segment)."""
    if type(name) is not str or _TABLE_NAME.match(name) is None:
        raise UnsafeNameError(f"table name is not a safe path segment: {str(name)[:80]!r}")
    return name


class FolderLister(Protocol):
    def list_folders(self, prefix: str) -> Iterable[str]:
        """The immediate sub-folders of ``prefix``, each with its trailing slash."""
        ...


def lake_tables(store: FolderLister, layer_prefixes: Iterable[str]) -> list[str]:
    """Every table with a folder in one of the layers, sorted. A folder that is not a safe table
    name is not a table (the aggregator never writes one) and is left out."""
    names: set[str] = set()
    for layer in layer_prefixes:
        head = f"{layer}/"
        for folder in store.list_folders(head):
            try:
                names.add(check_table_name(folder[len(head) :].rstrip("/")))
            except UnsafeNameError:
                continue
    return sorted(names)


@dataclass(frozen=True, order=True, slots=True)
class Partition:
    """One hour of one table."""

    table: str
    dt: date
    hour: int

    @classmethod
    def of_event_time(cls, table: str, event_time: str) -> Partition:
        """The partition of a change record's ``event_time`` (``YYYY-MM-DDTHH:...Z``)."""
        return cls(table, date.fromisoformat(event_time[:10]), int(event_time[11:13]))

    @property
    def path(self) -> str:
        """``<table>/dt=YYYY-MM-DD/hour=HH``, the folder below a layer's prefix."""
        return f"{self.table}/dt={self.dt.isoformat()}/hour={self.hour:02d}"

    def prefix(self, layer_prefix: str) -> str:
        """The S3 folder of this partition in a layer (``raw``, ``compacted``), with a trailing slash."""
        return f"{layer_prefix}/{self.path}/"

    @property
    def start(self) -> datetime:
        return datetime(self.dt.year, self.dt.month, self.dt.day, self.hour, tzinfo=UTC)


def table_prefix(layer_prefix: str, table: str) -> str:
    """The S3 folder of one table in a layer (``<layer>/<table>/``), with a trailing slash."""
    return f"{layer_prefix}/{table}/"


def day_prefix(layer_prefix: str, table: str, day: date) -> str:
    """The S3 folder of one table's day in a layer (``<layer>/<table>/dt=YYYY-MM-DD/``): a snapshot
    day, or the folder of the day's hour partitions."""
    return f"{table_prefix(layer_prefix, table)}dt={day.isoformat()}/"


def bootstrap_prefix(layer_prefix: str, table: str) -> str:
    """The S3 folder of a table's bootstrap export (``<layer>/<table>/_bootstrap/``)."""
    return f"{table_prefix(layer_prefix, table)}{BOOTSTRAP_FOLDER}/"


def day_of_folder(name: str) -> date | None:
    """The day of a folder ``dt=YYYY-MM-DD/`` (as listed below a table's folder); None for any
    other folder, or a day that does not exist (``dt=2026-02-30/``)."""
    match = _DAY_FOLDER.match(name)
    if match is None:
        return None
    try:
        return date.fromisoformat(match[1])
    except ValueError:
        return None


def part_name(generation: str, index: int, suffix: str = ".jsonl.gz", *, piece: str | None = None) -> str:
    """The name of data file ``index`` of ``generation`` in a published folder; a folder built in
    pieces (``changelake.pieces``) names the piece too (``Piece.name``), so that the names sort in
    piece order and each piece's files in their own order."""
    if piece is not None:
        return f"{DATA_PREFIX}{generation}-{piece}-{index:05d}{suffix}"
    return f"{DATA_PREFIX}{generation}-{index:05d}{suffix}"


_RAW_NAME_TIMES = re.compile(r"(\d{8}T\d{9}Z)-(\d{8}T\d{9}Z)-[0-9a-f]{32}\.jsonl\.gz\Z")


def compact_time(event_time: str) -> str:
    """An ``event_time`` (``2026-11-28T12:00:00.100Z``) as object names carry it (``20261128T120000100Z``):
    the same order, as text."""
    return event_time.replace("-", "").replace(":", "").replace(".", "")


def raw_file_name(first_event_time: str, last_event_time: str, digest: str) -> str:
    """A raw/ object's name: the event times of its first and last lines (its lines are in event-time
    order) and a digest of its content. A slice of the hour (``changelake.compaction``) reads only the
    objects whose times meet its own range, and refuses one holding a line outside its name's range."""
    return f"{compact_time(first_event_time)}-{compact_time(last_event_time)}-{digest}.jsonl.gz"


def raw_file_times(name: str) -> tuple[str, str] | None:
    """The compact event times of a raw/ object's first and last lines, from its name; None for a name
    that does not give them (objects written before names carried the last time, or by hand): such an
    object may hold any time of its hour."""
    match = _RAW_NAME_TIMES.match(name)
    if match is None or match.group(1) > match.group(2):
        return None
    return match.group(1), match.group(2)


def partition_key(layer_prefix: str, partition: Partition, file_name: str) -> str:
    """The object key of ``file_name`` in ``partition`` of a layer."""
    return partition.prefix(layer_prefix) + file_name


def parse_partition_prefix(layer_prefix: str, key_prefix: str) -> Partition:
    """The partition of a folder ``<layer>/<table>/dt=.../hour=HH/`` (as listed from S3)."""
    head = f"{layer_prefix}/"
    if not key_prefix.startswith(head):
        raise UnsafeNameError(f"{key_prefix!r} is not under {head!r}")
    table, _, rest = key_prefix[len(head) :].partition("/")
    match = _PARTITION.match(rest)
    if match is None or int(match[2]) > 23:
        raise UnsafeNameError(f"{key_prefix!r} is not a partition folder")
    try:
        day = date.fromisoformat(match[1])
    except ValueError:
        raise UnsafeNameError(f"{key_prefix!r} names a day that does not exist") from None
    return Partition(check_table_name(table), day, int(match[2]))


def quarantine_key(prefix: str, table: str, day: date, digest: str) -> str:
    """Where a batch of quarantined records goes: by table and (event or processing) day."""
    return f"{prefix}/{table}/dt={day.isoformat()}/{digest}.jsonl.gz"


def claim_key(prefix: str, digest: str) -> str:
    """Where an oversized record's claim check lives, named by its content."""
    return f"{prefix}/{digest[:2]}/{digest}.jsonl.gz"


def loss_report_key(prefix: str, table: str, day: date, digest: str) -> str:
    """Where a stream range that could not be replayed is reported."""
    return f"{prefix}/{table}/dt={day.isoformat()}/{digest}.json"

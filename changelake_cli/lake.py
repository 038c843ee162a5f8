"""Reading the lake in the DataBucket for an operator: tables, per-day figures per layer, the state
and changes of each hour (compacted, stale, pending), the last change stored, the newest snapshot
day and the bootstrap.

Everything comes from listings plus the small ``_manifest.json`` of each compacted hour, snapshot
day and bootstrap, read as the functions wrote them (``CompactionManifest``, ``DayManifest``,
``BootstrapManifest``); raw/ files are read only to count the lines of hours no manifest describes,
within ``RAW_READ_BUDGET`` and ``RAW_READ_OBJECTS``, and snapshot data files never. The keys are
``changelake.formats.layout``'s, under the prefixes the stack's functions are configured with
(``lake_prefixes``), so a stack deployed with other prefixes is read where it writes.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from changelake.compaction.compactor import RAW_SUFFIX
from changelake.compaction.manifest import CompactionManifest
from changelake.exceptions import UnsafeNameError
from changelake.formats.layout import (
    Partition,
    day_prefix,
    lake_tables,
    parse_partition_prefix,
    table_prefix,
)
from changelake.integrations.base import ObjectInfo
from changelake.integrations.s3 import S3Store
from changelake.publication import MANIFEST_NAME, Publication
from changelake.settings import (
    AggregatorSettings,
    CompactionSettings,
    Prefix,
    RedriveSettings,
    SnapshotSettings,
)
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.manifest import BootstrapManifest, DayManifest
from changelake_cli.errors import UsageError

LAYERS = ("raw", "compacted", "snapshot")
Layer = Literal["raw", "compacted", "snapshot"]
HourState = Literal["compacted", "stale", "pending"]
#: Compressed raw/ bytes one ``status`` may read to count the lines of hours without a manifest
#: (about 1 s of gunzip per 64 MiB on the development machine); past it a day's count is a floor.
RAW_READ_BUDGET = 64 * 1024 * 1024
#: raw/ GETs one ``status`` may make for those counts, so its S3 requests stay bounded however many
#: small objects the hours hold: an aggregator writes about one object per hour partition per
#: invocation (one a minute at the default AggregatorBatchingWindowSeconds of 60), so this covers
#: some 16 busy hours not yet compacted; 1000 GETs cost $0.0004 at S3 Standard's request price.
RAW_READ_OBJECTS = 1000
_CHUNK = 1024 * 1024

#: The prefixes the command reads, each from the function that writes under it: its logical ID,
#: its settings model and the field that names the prefix (variable, default and pattern).
WRITERS: dict[str, tuple[str, type[BaseModel], str]] = {
    "raw": ("AggregatorFunction", AggregatorSettings, "raw_prefix"),
    "compacted": ("CompactionFunction", CompactionSettings, "compacted_prefix"),
    "snapshot": ("SnapshotFunction", SnapshotSettings, "snapshot_prefix"),
    "lost": ("DlqRedriveFunction", RedriveSettings, "lost_prefix"),
}


def _default(name: str) -> str:
    _, settings, prefix_field = WRITERS[name]
    return str(settings.model_fields[prefix_field].default)


@dataclass(frozen=True)
class LakePrefixes:
    """Where the stack's functions write each layer (defaults: their settings' defaults)."""

    raw: str = _default("raw")
    compacted: str = _default("compacted")
    snapshot: str = _default("snapshot")
    lost: str = _default("lost")

    def of(self, layer: Layer) -> str:
        prefix: str = getattr(self, layer)
        return prefix

    @property
    def layers(self) -> tuple[str, str, str]:
        return self.raw, self.compacted, self.snapshot


EnvironmentOf = Callable[[str], Mapping[str, object] | None]


def lake_prefixes(environment_of: EnvironmentOf) -> LakePrefixes:
    """The prefixes as the stack configures its functions: ``environment_of(logical_id)`` gives a
    function's environment variables (None: the stack has no such function, so the default)."""
    prefix = TypeAdapter(Prefix)
    found: dict[str, str] = {}
    for name, (logical_id, settings, prefix_field) in WRITERS.items():
        environment = environment_of(logical_id)
        variable = settings.model_fields[prefix_field].alias
        if environment is None or variable is None or variable not in environment:
            continue
        try:
            found[name] = prefix.validate_python(str(environment[variable]))
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise UsageError(f"{logical_id} has {variable}={environment[variable]!r}: {problem}") from None
    return LakePrefixes(**found)


@dataclass(frozen=True, slots=True)
class Listed:
    key: str
    etag: str
    size: int
    modified: datetime


class LakeStore(S3Store):
    """The DataBucket, read-only, with each object's modification time."""

    def list_detailed(self, prefix: str) -> Iterator[Listed]:
        for response in self.list_pages(prefix):
            for item in response.get("Contents", []):
                yield Listed(item["Key"], item["ETag"], int(item["Size"]), item["LastModified"])


def is_data(key: str, folder: str | None = None) -> bool:
    """Files whose names start with ``_`` or ``.`` (manifests) are not data (docs/contracts.md), nor is
    anything in a sub-folder of ``folder`` (a partition) whose name does (a snapshot day's ``_removed/``)."""
    below = key[len(folder) :] if folder is not None and key.startswith(folder) else key.rsplit("/", 1)[-1]
    return not any(name.startswith(("_", ".")) for name in below.split("/"))


class ReadBudget:
    """Bytes and objects left to read for line counts, shared by the threads of one status call."""

    def __init__(self, total: int = RAW_READ_BUDGET, objects: int = RAW_READ_OBJECTS) -> None:
        self.left = total
        self.objects_left = objects
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left or self.objects_left < 1:
                return False
            self.left -= size
            self.objects_left -= 1
            return True


def count_lines(store: S3Store, key: str) -> int:
    """Lines of one gzip JSON Lines object, streamed (never held whole)."""
    body = store.open(key)
    inflate = zlib.decompressobj(wbits=47)  # gzip, concatenated members included
    lines = 0
    while chunk := body.read(_CHUNK):
        data = inflate.decompress(chunk)
        lines += data.count(b"\n")
        while inflate.unused_data:
            rest = inflate.unused_data
            inflate = zlib.decompressobj(wbits=47)
            lines += inflate.decompress(rest).count(b"\n")
    return lines


@dataclass
class LayerDay:
    """One layer's files of one table and day. ``changes`` is exact unless ``complete`` is false."""

    files: int = 0
    bytes: int = 0
    changes: int | None = None
    complete: bool = True

    def add_file(self, size: int) -> None:
        self.files += 1
        self.bytes += size

    def add_changes(self, count: int) -> None:
        self.changes = (self.changes or 0) + count


@dataclass
class DayReport:
    table: str
    dt: date
    raw: LayerDay = field(default_factory=LayerDay)
    compacted: LayerDay = field(default_factory=LayerDay)
    snapshot: LayerDay = field(default_factory=LayerDay)
    hours: dict[str, HourState] = field(default_factory=dict)
    #: raw/ lines per hour ("HH"): a compacted hour's from its manifest, another's counted within
    #: the read budget (a floor for the hours in ``hours_counted_in_part``).
    changes_by_hour: dict[str, int] = field(default_factory=dict)
    hours_counted_in_part: list[str] = field(default_factory=list)

    def layer(self, name: Layer) -> LayerDay:
        day: LayerDay = getattr(self, name)
        return day


def _by_hour(listed: Iterable[Listed], layer_prefix: str) -> dict[Partition, list[Listed]]:
    """The objects directly inside hour partitions, by partition (anything else is not of an hour)."""
    hours: dict[Partition, list[Listed]] = defaultdict(list)
    for item in listed:
        try:
            partition = parse_partition_prefix(layer_prefix, item.key.rsplit("/", 1)[0] + "/")
        except UnsafeNameError:
            continue
        hours[partition].append(item)
    return hours


def _compaction_manifests(
    store: LakeStore, compacted_prefix: str, hours: dict[Partition, list[Listed]]
) -> dict[Partition, CompactionManifest | None]:
    """The manifest of each compacted hour that has one; None for one this version cannot read (the
    next compaction replaces it, so its hour counts as stale)."""
    found: dict[Partition, CompactionManifest | None] = {}
    for partition, items in hours.items():
        if any(item.key.endswith(MANIFEST_NAME) for item in items):
            current = Publication(store, partition.prefix(compacted_prefix)).read()
            if current is not None:
                found[partition] = CompactionManifest.from_json(current.body)
    return found


@dataclass(frozen=True)
class LastChange:
    """The newest raw/ object of a table: when it was stored, and the latest event time in it."""

    table: str
    partition: str
    stored_at: datetime
    event_time: str | None


@dataclass(frozen=True)
class SnapshotDay:
    """The newest snapshot day of a table, from its ``_manifest.json`` (``DayManifest``)."""

    dt: date
    items: int
    built_at: str
    #: What the day was built on: ``empty``, ``bootstrap`` (the export) or ``snapshot`` (the day before).
    base: str


@dataclass(frozen=True)
class BootstrapState:
    """A table's bootstrap, from ``<snapshot>/<table>/_bootstrap/_manifest.json`` (``BootstrapManifest``)."""

    bootstrapped_at: str
    export_time: str
    export_arn: str
    items: int
    first_day: date
    #: The lake's first change is later than the export: changes in between may be in neither.
    missing_possible: bool

    @classmethod
    def of(cls, manifest: BootstrapManifest) -> BootstrapState:
        return cls(
            bootstrapped_at=manifest.bootstrapped_at,
            export_time=manifest.export_time,
            export_arn=manifest.export_arn,
            items=manifest.items,
            first_day=manifest.day,
            missing_possible=manifest.gap.missing_possible,
        )


@dataclass(frozen=True)
class SnapshotState:
    last_day: SnapshotDay | None
    bootstrap: BootstrapState | None


#: Newest snapshot days ``snapshot_state`` tries for a readable manifest (a day folder without one
#: is being built or was left unreadable, and the next snapshot run rebuilds it).
SNAPSHOT_DAYS_TRIED = 3


@dataclass(frozen=True)
class Lake:
    """The DataBucket as the stack's functions lay it out: its tables, days and last changes."""

    store: LakeStore
    prefixes: LakePrefixes = field(default_factory=LakePrefixes)

    def tables(self) -> list[str]:
        """Every table with a folder in raw/, compacted/ or snapshot/."""
        return lake_tables(self.store, self.prefixes.layers)

    def day_report(self, table: str, dt: date, budget: ReadBudget) -> DayReport:
        """One table's day in every layer, and each raw/ hour's state."""
        raw_prefix, compacted_prefix = self.prefixes.raw, self.prefixes.compacted
        report = DayReport(table, dt)
        raw = _by_hour(self.store.list_detailed(day_prefix(raw_prefix, table, dt)), raw_prefix)
        compacted = _by_hour(
            self.store.list_detailed(day_prefix(compacted_prefix, table, dt)), compacted_prefix
        )
        manifests = _compaction_manifests(self.store, compacted_prefix, compacted)
        for partition, items in sorted(raw.items()):
            hour = f"{partition.hour:02d}"
            inputs = [i for i in items if i.key.endswith(RAW_SUFFIX)]
            for item in inputs:
                report.raw.add_file(item.size)
            manifest = manifests.get(partition)
            if manifest is not None and manifest.has_inputs(
                [ObjectInfo(i.key, i.etag, i.size) for i in inputs]
            ):
                report.hours[hour] = "compacted"
                report.raw.add_changes(manifest.counts.rows_in)
                report.changes_by_hour[hour] = manifest.counts.rows_in
                continue
            report.hours[hour] = "stale" if partition in manifests else "pending"
            counted, complete = _count_unmanifested(self.store, inputs, budget)
            if counted is not None:
                report.raw.add_changes(counted)
            report.changes_by_hour[hour] = counted or 0
            if not complete:
                report.raw.complete = False
                report.hours_counted_in_part.append(hour)
        for partition, items in sorted(compacted.items()):
            data = [i for i in items if is_data(i.key)]
            for item in data:
                report.compacted.add_file(item.size)
            if data:
                manifest = manifests.get(partition)
                report.compacted.add_changes(manifest.counts.rows_out if manifest is not None else 0)
        self._snapshot_day(report)
        return report

    def _snapshot_day(self, report: DayReport) -> None:
        prefix = day_prefix(self.prefixes.snapshot, report.table, report.dt)
        listed = list(self.store.list_detailed(prefix))
        for item in listed:
            if is_data(item.key, prefix):
                report.snapshot.add_file(item.size)
        if any(item.key == f"{prefix}{MANIFEST_NAME}" for item in listed):
            current = Publication(self.store, prefix).read()
            manifest = DayManifest.from_body(current.body) if current is not None else None
            if manifest is not None:  # an unreadable one: the next snapshot run rebuilds the day
                report.snapshot.add_changes(manifest.counts.items)

    def snapshot_state(self, table: str) -> SnapshotState:
        """The newest snapshot day with a manifest and the bootstrap, if any: one listing of the
        table's snapshot days and at most ``SNAPSHOT_DAYS_TRIED`` + 1 manifest reads."""
        builder = SnapshotBuilder(
            self.store,
            raw_prefix=self.prefixes.raw,
            compacted_prefix=self.prefixes.compacted,
            snapshot_prefix=self.prefixes.snapshot,
        )
        last_day = None
        for day in sorted(builder.built_days(table), reverse=True)[:SNAPSHOT_DAYS_TRIED]:
            manifest, _current = builder.read_day(table, day)
            if manifest is not None:
                items, base = manifest.counts.items, manifest.base.kind
                last_day = SnapshotDay(manifest.day, items, manifest.built_at, base)
                break
        bootstrap, _current = builder.read_bootstrap(table)
        return SnapshotState(last_day, BootstrapState.of(bootstrap) if bootstrap is not None else None)

    def last_change(self, table: str) -> LastChange | None:
        """The newest event-time partition of ``table`` in raw/ and its newest object."""
        raw_prefix = self.prefixes.raw
        for day in sorted(self.store.list_folders(table_prefix(raw_prefix, table)), reverse=True):
            for partition in sorted(_hour_partitions(self.store, raw_prefix, day), reverse=True):
                listed = self.store.list_detailed(partition.prefix(raw_prefix))
                objects = [i for i in listed if i.key.endswith(RAW_SUFFIX)]
                if not objects:
                    continue
                newest = max(objects, key=lambda i: (i.modified, i.key))
                return LastChange(
                    table,
                    partition.path.removeprefix(f"{table}/"),
                    newest.modified.astimezone(UTC),
                    _last_event_time(self.store, newest.key),
                )
        return None


def _hour_partitions(store: LakeStore, layer_prefix: str, day_folder: str) -> list[Partition]:
    partitions = []
    for folder in store.list_folders(day_folder):
        try:
            partitions.append(parse_partition_prefix(layer_prefix, folder))
        except UnsafeNameError:
            continue  # not an hour=HH folder
    return partitions


def _count_unmanifested(store: S3Store, inputs: list[Listed], budget: ReadBudget) -> tuple[int | None, bool]:
    """The lines of ``inputs`` the budget lets us read (None: none read), and whether that was all."""
    counted: int | None = None
    complete = True
    for item in inputs:
        if budget.take(item.size):
            counted = (counted or 0) + count_lines(store, item.key)
        else:
            complete = False
    return counted, complete


def _last_event_time(store: S3Store, key: str) -> str | None:
    """The greatest ``event_time`` in a raw object (aggregator files are sorted by it)."""
    body = zlib.decompress(store.get(key), wbits=47)
    lines = body.rstrip(b"\n").rsplit(b"\n", 1)
    try:
        value = json.loads(lines[-1]).get("event_time")
    except ValueError:
        return None
    return value if isinstance(value, str) else None

"""Reading the lake in the DataBucket for an operator: tables, per-day figures per layer, the state
of each hour (compacted, stale, pending) and the last change stored.

Everything comes from listings plus the small ``_manifest.json`` of each compacted hour; raw/ files
are read only to count the lines of hours no manifest describes, within ``RAW_READ_BUDGET``.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from changelake.compaction.compactor import RAW_SUFFIX
from changelake.compaction.manifest import inputs_document
from changelake.exceptions import ObjectNotFoundError, UnsafeNameError
from changelake.formats.layout import check_table_name
from changelake.integrations.base import ObjectInfo
from changelake.integrations.s3 import S3Store
from changelake.publication import MANIFEST_NAME
from changelake.snapshot.manifest import DayManifest

LAYERS = ("raw", "compacted", "snapshot")
Layer = Literal["raw", "compacted", "snapshot"]
HourState = Literal["compacted", "stale", "pending"]
#: Compressed raw/ bytes one ``status`` may read to count the lines of hours without a manifest
#: (about 1 s of gunzip per 64 MiB on the development machine); past it a day's count is a floor.
RAW_READ_BUDGET = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


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

    def folders(self, prefix: str) -> list[str]:
        """The names of the immediate sub-folders of ``prefix`` (no slashes)."""
        return [folder[len(prefix) :].rstrip("/") for folder in self.list_folders(prefix)]


def is_data(key: str, folder: str | None = None) -> bool:
    """Files whose names start with ``_`` or ``.`` (manifests) are not data (docs/contracts.md), nor is
    anything in a sub-folder of ``folder`` (a partition) whose name does (a snapshot day's ``_removed/``)."""
    below = key[len(folder) :] if folder is not None and key.startswith(folder) else key.rsplit("/", 1)[-1]
    return not any(name.startswith(("_", ".")) for name in below.split("/"))


def tables(store: LakeStore) -> list[str]:
    """Every table with a folder in raw/, compacted/ or snapshot/."""
    found: set[str] = set()
    for layer in LAYERS:
        for name in store.folders(f"{layer}/"):
            try:
                found.add(check_table_name(name))
            except UnsafeNameError:
                continue  # not a table folder (the aggregator never writes one)
    return sorted(found)


class ReadBudget:
    """Bytes left to read for line counts, shared by the threads of one status call."""

    def __init__(self, total: int = RAW_READ_BUDGET) -> None:
        self.left = total
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left:
                return False
            self.left -= size
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

    def layer(self, name: Layer) -> LayerDay:
        day: LayerDay = getattr(self, name)
        return day


def _by_hour(listed: Iterable[Listed], prefix: str) -> dict[str, list[Listed]]:
    hours: dict[str, list[Listed]] = defaultdict(list)
    for item in listed:
        folder, _, _name = item.key[len(prefix) :].partition("/")
        if folder.startswith("hour=") and "/" not in _name:
            hours[folder.removeprefix("hour=")].append(item)
    return hours


def _manifest(store: S3Store, key: str) -> dict[str, Any] | None:
    try:
        document = json.loads(store.get(key))
    except ObjectNotFoundError:
        return None
    except ValueError:
        return {}  # unreadable: the next compaction replaces it; the hour counts as stale
    return document if isinstance(document, dict) else {}


def day_report(store: LakeStore, table: str, dt: date, budget: ReadBudget) -> DayReport:
    """One table's day in every layer, and each raw/ hour's state."""
    report = DayReport(table, dt)
    folder = f"{table}/dt={dt.isoformat()}/"
    raw = _by_hour(store.list_detailed(f"raw/{folder}"), f"raw/{folder}")
    compacted = _by_hour(store.list_detailed(f"compacted/{folder}"), f"compacted/{folder}")
    for hour, items in sorted(raw.items()):
        inputs = [i for i in items if i.key.endswith(RAW_SUFFIX)]
        for item in inputs:
            report.raw.add_file(item.size)
        manifest = (
            _manifest(store, f"compacted/{folder}hour={hour}/{MANIFEST_NAME}")
            if any(i.key.endswith(MANIFEST_NAME) for i in compacted.get(hour, []))
            else None
        )
        documented = inputs_document([ObjectInfo(i.key, i.etag, i.size) for i in inputs])
        if manifest is not None and manifest.get("inputs") == documented:
            report.hours[hour] = "compacted"
            report.raw.add_changes(int(manifest.get("rows_in", 0)))
            continue
        report.hours[hour] = "stale" if manifest is not None else "pending"
        _count_unmanifested(store, report.raw, inputs, budget)
    for hour, items in sorted(compacted.items()):
        data = [i for i in items if is_data(i.key)]
        for item in data:
            report.compacted.add_file(item.size)
        if data:
            manifest = _manifest(store, f"compacted/{folder}hour={hour}/{MANIFEST_NAME}") or {}
            report.compacted.add_changes(int(manifest.get("rows_out", 0)))
    _snapshot_day(store, report, f"snapshot/{folder}")
    return report


def _count_unmanifested(store: S3Store, layer: LayerDay, inputs: list[Listed], budget: ReadBudget) -> None:
    for item in inputs:
        if budget.take(item.size):
            layer.add_changes(count_lines(store, item.key))
        else:
            layer.complete = False


def _snapshot_day(store: LakeStore, report: DayReport, prefix: str) -> None:
    listed = list(store.list_detailed(prefix))
    for item in listed:
        if is_data(item.key, prefix):
            report.snapshot.add_file(item.size)
    if any(item.key == f"{prefix}{MANIFEST_NAME}" for item in listed):
        manifest = DayManifest.from_body(_manifest(store, f"{prefix}{MANIFEST_NAME}") or {})
        if manifest is not None:  # an unreadable one: the next snapshot run rebuilds the day
            report.snapshot.add_changes(manifest.counts.items)


@dataclass(frozen=True)
class LastChange:
    """The newest raw/ object of a table: when it was stored, and the latest event time in it."""

    table: str
    partition: str
    stored_at: datetime
    event_time: str | None


def last_change(store: LakeStore, table: str) -> LastChange | None:
    """The newest event-time partition of ``table`` in raw/ and its newest object."""
    days = sorted(d for d in store.folders(f"raw/{table}/") if d.startswith("dt="))
    for day in reversed(days):
        hours = sorted(h for h in store.folders(f"raw/{table}/{day}/") if h.startswith("hour="))
        for hour in reversed(hours):
            prefix = f"raw/{table}/{day}/{hour}/"
            objects = [i for i in store.list_detailed(prefix) if i.key.endswith(RAW_SUFFIX)]
            if not objects:
                continue
            newest = max(objects, key=lambda i: (i.modified, i.key))
            return LastChange(
                table, f"{day}/{hour}", newest.modified.astimezone(UTC), _last_event_time(store, newest.key)
            )
    return None


def _last_event_time(store: S3Store, key: str) -> str | None:
    """The greatest ``event_time`` in a raw object (aggregator files are sorted by it)."""
    body = zlib.decompress(store.get(key), wbits=47)
    lines = body.rstrip(b"\n").rsplit(b"\n", 1)
    try:
        value = json.loads(lines[-1]).get("event_time")
    except ValueError:
        return None
    return value if isinstance(value, str) else None

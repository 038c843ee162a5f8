"""Fetching a partition with its Hive layout (``<layer>/<table>/dt=.../hour=.../file``), or as one file."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from changelake.formats.layout import Partition, day_prefix
from changelake_cli.errors import UsageError
from changelake_cli.lake import LAYERS, LakeStore, Layer, is_data
from changelake_cli.status import Operator, check_hour

_CHUNK = 1024 * 1024
#: Downloads from this size on show a progress bar on a terminal (a few seconds on a slow link).
PROGRESS_FROM_BYTES = 8 * 1024 * 1024

Progress = Callable[[int], None]  # bytes just written


@dataclass(frozen=True)
class PartitionRef:
    layer: Layer
    table: str
    dt: str
    hour: str | None
    #: The partition's folder in the bucket, under the prefix the stack writes the layer to.
    prefix: str

    @property
    def file_name(self) -> str:
        """The name of the partition as one file (the page's download link)."""
        hour = "" if self.hour is None else f"-{self.hour}"
        suffix = ".json" if self.layer == "snapshot" else ".jsonl.gz"
        return f"{self.table}-{self.layer}-{self.dt}{hour}{suffix}"


@dataclass(frozen=True)
class Download:
    partition: PartitionRef
    target: Path
    files: list[str]
    bytes: int


def partition_ref(operator: Operator, layer: str, table: str, dt: str, hour: str | None) -> PartitionRef:
    if layer not in LAYERS:
        raise UsageError(f"--layer must be raw, compacted or snapshot, not {layer!r}")
    if layer == "snapshot" and hour is not None:
        raise UsageError("a snapshot is a whole day: --hour does not apply to --layer snapshot")
    if hour is not None:
        check_hour(hour)
    checked = cast(Layer, layer)
    day, table = operator.check_day(dt), operator.check_table(table)
    layer_prefix = operator.lake.prefixes.of(checked)
    prefix = (
        day_prefix(layer_prefix, table, day)
        if hour is None
        else Partition(table, day, int(hour)).prefix(layer_prefix)
    )
    return PartitionRef(checked, table, day.isoformat(), hour, prefix)


def partition_objects(store: LakeStore, ref: PartitionRef) -> list[tuple[str, int]]:
    objects = [(item.key, item.size) for item in store.list_detailed(ref.prefix)]
    if not objects:
        raise UsageError(f"nothing under s3://{store.bucket}/{ref.prefix}")
    return objects


def download(
    store: LakeStore, ref: PartitionRef, to: Path, *, on_start: Callable[[int], Progress] | None = None
) -> Download:
    """Every object of the partition (manifests included) to ``to/<key>``; ``on_start(total)`` gives
    the progress callback."""
    objects = partition_objects(store, ref)
    total = sum(size for _, size in objects)
    progress = on_start(total) if on_start else None
    root = to.resolve()
    written: list[str] = []
    for key, _size in objects:
        path = (root / key).resolve()
        if not path.is_relative_to(root):
            raise UsageError(f"refusing to write {key} outside {root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            body = store.open(key)
            while chunk := body.read(_CHUNK):
                handle.write(chunk)
                if progress:
                    progress(len(chunk))
        written.append(str(path))
    return Download(ref, root, written, total)


def stream_partition(store: LakeStore, ref: PartitionRef) -> Iterator[bytes]:
    """The partition as one file: its data files' gzip members one after the other (a valid gzip
    JSON Lines file), or for a snapshot day a plain JSON array of its lines (the text as stored)."""
    keys = [key for key, _ in partition_objects(store, ref) if is_data(key, ref.prefix)]
    if ref.layer != "snapshot":
        for key in keys:
            body = store.open(key)
            while chunk := body.read(_CHUNK):
                yield chunk
        return
    first = True
    yield b"["
    for key in keys:
        for line in gzip.decompress(store.get(key)).splitlines():
            if line.strip():
                yield (b"\n" if first else b",\n") + line
                first = False
    yield b"\n]\n"

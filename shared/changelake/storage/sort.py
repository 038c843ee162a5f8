"""External merge sort with on-the-fly deduplication. Pure local I/O, no AWS.

Entries are a change's ``order_key`` (``changelake.formats.change_line``: event_time, then
sequence_number as a number, then event_id) followed by its line, so ties are broken by the
bytes. Entries are kept in memory until their estimated size passes the memory budget; then they
are sorted, deduplicated and spilled as a sorted *run* to a temporary directory as chunks of
pickled entries: plain while the runs spilled so far stay under ``SPILL_PLAIN_BYTES`` (disk is
plentiful, CPU is not: compressing cost about a sixth of a spilling run's time), zlib level 1
past it (a fifth of the size, so a large hour still fits ``/tmp``).
At the end the runs (and what is still in memory) are merged with
``heapq.merge``, and duplicates are dropped as they come out.

Duplicates and the choice between them: entries with the same ``(event_time, sequence_number,
event_id)`` are adjacent in this order, and the first one (the smallest line bytes) is kept, so the
result does not depend on the order of the inputs. A redelivered change is byte-identical (the
consumer builds the line deterministically from the stream record), so the bytes normally agree;
when they differ (say, a newer converter added a field) the pair is counted in ``conflicts``.
Assumption: one ``event_id`` always comes with the same ``event_time`` and ``sequence_number``
(all three are attributes of one stream record); if it did not, such a pair would not be adjacent
and both would be kept.
"""

from __future__ import annotations

import heapq
import pickle
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

Entry = tuple[str, int, str, bytes]

#: Estimated Python overhead of one in-memory entry beyond its line (tuple, str, int, bytes objects).
ENTRY_OVERHEAD_BYTES = 200
#: Uncompressed bytes of line per spilled chunk; each open run holds one chunk while merging.
SPILL_CHUNK_BYTES = 512 * 1024
#: Runs merged at once; more are merged in several passes so open chunks stay bounded.
MAX_FAN_IN = 48
SPILL_COMPRESSION_LEVEL = 1
#: Spilled bytes written uncompressed before runs are compressed (the function has 2 GiB of /tmp).
SPILL_PLAIN_BYTES = 1024 * 1024 * 1024
_FRAME = struct.Struct(">I?")  # payload length, compressed


class DedupeSorter:
    """Collects entries within a memory budget, then yields them sorted and each key once.

    Use as a context manager: spilled runs live in a temporary directory removed on exit.
    """

    def __init__(self, spill_dir: Path, memory_budget_bytes: int) -> None:
        self.spill_dir = spill_dir
        self.memory_budget_bytes = memory_budget_bytes
        self.rows_in = 0
        self.rows_out = 0
        self.conflicts = 0
        self.spilled_runs = 0
        self.spilled_bytes = 0
        self._buffer: list[Entry] = []
        self._buffered_bytes = 0
        self._runs: list[Path] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> DedupeSorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._buffer = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def duplicates(self) -> int:
        return self.rows_in - self.rows_out

    def add(self, entry: Entry) -> None:
        self.rows_in += 1
        self._buffer.append(entry)
        self._buffered_bytes += len(entry[3]) + ENTRY_OVERHEAD_BYTES
        if self._buffered_bytes >= self.memory_budget_bytes:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort()
        if self._tmp is None:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._tmp = tempfile.TemporaryDirectory(prefix="changelake-compaction-", dir=self.spill_dir)
        path = Path(self._tmp.name) / f"run-{len(self._runs):05d}"
        with path.open("wb") as file:
            compress = self.spilled_bytes + self._buffered_bytes > SPILL_PLAIN_BYTES
            self.spilled_bytes += _write_run(file, _unique(self._buffer), compress=compress)
        self._runs.append(path)
        self.spilled_runs += 1
        self._buffer = []
        self._buffered_bytes = 0

    def sorted_unique(self) -> Iterator[Entry]:
        """Every distinct entry in order; call once, after the last ``add``. Counts ``rows_out``."""
        self._buffer.sort()
        sources: list[Iterable[Entry]] = [_read_run(path) for path in self._reduce_runs()]
        if self._buffer:
            sources.append(self._buffer)
        if not sources:
            return
        merged: Iterable[Entry] = sources[0] if len(sources) == 1 else heapq.merge(*sources)
        previous: Entry | None = None
        for entry in merged:
            if previous is not None and entry[:3] == previous[:3]:
                if entry[3] != previous[3]:
                    self.conflicts += 1
                continue
            previous = entry
            self.rows_out += 1
            yield entry

    def _reduce_runs(self) -> list[Path]:
        """Merge runs in passes until at most ``MAX_FAN_IN`` remain."""
        runs = list(self._runs)
        while len(runs) > MAX_FAN_IN:
            group, runs = runs[:MAX_FAN_IN], runs[MAX_FAN_IN:]
            assert self._tmp is not None
            path = Path(self._tmp.name) / f"merged-{self.spilled_runs:05d}"
            self.spilled_runs += 1
            with path.open("wb") as file:
                merged = heapq.merge(*(_read_run(run) for run in group))
                _write_run(file, _unique(merged), compress=True)
            for run in group:
                run.unlink()
            runs.append(path)
        return runs


def _unique(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Sorted entries with exact repeats of the key dropped (the first is kept)."""
    previous: Entry | None = None
    for entry in entries:
        if previous is None or entry[:3] != previous[:3]:
            previous = entry
            yield entry


def _write_run(file: BinaryIO, entries: Iterable[Entry], *, compress: bool) -> int:
    """Write sorted entries as length-framed chunks (zlib level 1 if ``compress``); returns the bytes."""
    written = 0
    chunk: list[Entry] = []
    size = 0

    def flush() -> int:
        payload = pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
        if compress:
            payload = zlib.compress(payload, SPILL_COMPRESSION_LEVEL)
        file.write(_FRAME.pack(len(payload), compress))
        file.write(payload)
        return _FRAME.size + len(payload)

    for entry in entries:
        chunk.append(entry)
        size += len(entry[3]) + 64
        if size >= SPILL_CHUNK_BYTES:
            written += flush()
            chunk, size = [], 0
    if chunk:
        written += flush()
    return written


def _read_run(path: Path) -> Iterator[Entry]:
    with path.open("rb") as file:
        while header := file.read(_FRAME.size):
            length, compressed = _FRAME.unpack(header)
            payload = file.read(length)
            # Our own file, written by _write_run in this process's temporary directory.
            yield from pickle.loads(zlib.decompress(payload) if compressed else payload)  # noqa: S301

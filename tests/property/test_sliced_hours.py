"""An hour built in N slices and one commit holds the very lines, in the very order, and the same
counts as the hour built by one invocation.

Each example: a random hour of changes (redeliveries within and across raw files, conflicting
copies of one ``event_id``, equal event times, changes right at and around slice boundaries,
slices left empty), in one to four raw files in any order, and a random N. The hour is compacted
once by one invocation and once by N slice workers and the commit, each in a bucket of its own
(in memory: the protocol is the one the functional tests run on moto), on the strict path or the
fast path (with its checking process). Concatenating each folder's parts in name order must give
the same bytes, and the manifests the same counts.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from changelake.compaction.compactor import Compactor
from changelake.compaction.sliced_hours import SlicedHours
from changelake.compaction.slices import HOUR_MS
from changelake.formats.layout import Partition
from changelake.integrations.s3 import S3Store
from changelake.pieces import Piece
from tests.functional.memory_s3 import InMemoryS3

PARTITION = Partition("orders", date(2026, 11, 22), 12)
BUCKET = "lake"
#: Points of the hour (ms) where slices of 1 to 6 begin, and a millisecond either side of each.
BOUNDARIES = sorted(
    {
        point + delta
        for n in range(1, 7)
        for k in range(n)
        for point in [k * HOUR_MS // n]
        for delta in (-1, 0, 1)
    }
    - {-1}
)


@dataclass(frozen=True)
class Copy:
    """One copy of a change in raw/: which change, which file, and whether its bytes differ."""

    change: int
    file: int
    variant: int


def clock(milliseconds: int) -> str:
    minutes, rest = divmod(milliseconds, 60_000)
    return f"2026-11-22T12:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}Z"


def line(
    change: int, milliseconds: int, sequence: int, variant: int, tail: str = "", name: str = "e"
) -> bytes:
    """A change line as the consumer writes it (our own prefix first), with ``tail`` after its last field."""
    return (
        f'{{"event_id":"{name}{change}","event_name":"MODIFY","table":"orders","event_time":"{clock(milliseconds)}",'
        f'"sequence_number":"{sequence}","keys":{{"pk":{{"S":"k{change % 5}"}}}},'
        f'"new_image":{{"v":{{"N":"{variant}"}}}},"old_image":null,"size_bytes":{10 + variant},'
        f'"user_identity":null{tail}}}'
    ).encode()


#: A second ``event_time`` key after the prefix: JSON readers take the last, so the full parse
#: disagrees with the prefix (spelled literally, or with an escape the prefix cannot see).
SECOND_KEYS = ('"event_time"', '"event\\u005ftime"')


times = st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, HOUR_MS - 1))
hostile = st.lists(st.tuples(times, times, st.sampled_from(SECOND_KEYS)), max_size=2)
hours = st.lists(st.tuples(times, st.integers(1, 10**21)), min_size=1, max_size=40)


@st.composite
def raw_hours(draw: st.DrawFn) -> tuple[list[list[bytes]], int]:
    """Raw files of one hour (each a list of lines, any order), and N."""
    changes = draw(hours)
    if draw(st.booleans()):  # some changes at the very same event_time
        shared = changes[0][0]
        changes = [(shared if index % 3 == 0 else ms, seq) for index, (ms, seq) in enumerate(changes)]
    copies = draw(
        st.lists(
            st.builds(
                Copy, st.integers(0, len(changes) - 1), st.integers(0, 3), st.sampled_from([0, 0, 0, 1])
            ),
            min_size=1,
            max_size=80,
        )
    )
    files: list[list[bytes]] = [[] for _ in range(4)]
    for index in range(len(changes)):  # every change at least once
        files[index % 4].append(line(index, *changes[index], 0))
    for copy in copies:
        files[copy.file].append(line(copy.change, *changes[copy.change], copy.variant))
    for index, (prefix_ms, full_ms, key) in enumerate(draw(hostile)):
        files[index % 4].append(line(index, prefix_ms, 7, 0, tail=f',{key}:"{clock(full_ms)}"', name="h"))
    for lines in files:
        draw(st.randoms()).shuffle(lines)
    return [lines for lines in files if lines], draw(st.integers(1, 6))


def lake(files: list[list[bytes]]) -> tuple[S3Store, Compactor]:
    store = S3Store(BUCKET, client=InMemoryS3())
    for index, lines in enumerate(files):
        body = gzip.compress(b"".join(text + b"\n" for text in lines), mtime=0)
        store.put(f"{PARTITION.prefix('raw')}raw-{index}.jsonl.gz", body)
    return store, Compactor(store)


def published(store: S3Store) -> tuple[bytes, dict[str, Any]]:
    """The hour's parts concatenated in name order (decompressed), and its manifest's counts."""
    folder = PARTITION.prefix("compacted")
    keys = sorted(item.key for item in store.list_objects(folder + "part-"))
    manifest = json.loads(store.get(folder + "_manifest.json"))
    counts = {name: manifest[name] for name in ("rows_in", "rows_out", "duplicates_removed", "conflicts")}
    counts["bytes_in"] = manifest["bytes_in"]
    return b"".join(gzip.decompress(store.get(key)) for key in keys), counts


#: In memory, an example takes milliseconds (strict path) to a second (fast path: a checking
#: process per slice), so more than the moto properties' budget.
EXAMPLES = 40


@settings(max_examples=EXAMPLES)
@given(raw_hours(), st.booleans())
@example(([[line(0, 0, 1, 0), line(1, HOUR_MS - 1, 2, 0), line(0, 0, 1, 1)]], 3), False)
def test_an_hour_built_in_slices_holds_what_one_invocation_writes(
    hour: tuple[list[list[bytes]], int], fast_path: bool
) -> None:
    files, count = hour
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("changelake.compaction.compactor.FAST_PATH_MIN_BYTES", 0 if fast_path else 10**15)
        # GIVEN the same raw/ objects in two buckets
        single_store, single = lake(files)
        sliced_store, sliced = lake(files)

        # WHEN one bucket's hour is compacted by one invocation, the other's in N slices and a commit
        single.compact(PARTITION)
        hours = SlicedHours(sliced)
        for index in reversed(range(count)):  # the order the slices finish in does not matter
            hours.build(PARTITION, Piece(index, count))
        committed = hours.commit(PARTITION, count)

    # THEN both hold the same lines in the same order, with the same counts
    assert committed.status == "compacted"
    assert published(sliced_store) == published(single_store)
    # AND the slices' records are gone
    assert not list(sliced_store.list_objects(PARTITION.prefix("compacted") + "_pieces/"))

"""The typed commit records: round trips, unreadable documents, and generations that follow their inputs."""

from __future__ import annotations

from datetime import date

from changelake.integrations.s3 import ObjectInfo
from changelake.snapshot.manifest import (
    EMPTY_BASE,
    BaseRef,
    DayCounts,
    DayManifest,
    FileRef,
    OutputPart,
    day_generation,
)

DAY = date(2026, 11, 22)
INPUTS = [
    ObjectInfo("raw/orders/dt=2026-11-22/hour=01/b.jsonl.gz", '"e2"', 20),
    ObjectInfo("raw/a", '"e1"', 10),
]


def manifest() -> DayManifest:
    return DayManifest(
        table="orders",
        dt=DAY.isoformat(),
        generation=day_generation("orders", DAY, EMPTY_BASE, INPUTS),
        base=EMPTY_BASE,
        inputs=tuple(FileRef.of(item) for item in INPUTS),
        outputs=(
            OutputPart(key="k", rows=1, bytes=2, uncompressed_bytes=3, upload_id="u", part_etags=('"p"',)),
        ),
        counts=DayCounts(items=1, changes_read=2),
        built_at="2026-11-23T00:45:00Z",
        seconds=1.5,
    )


def test_a_manifest_round_trips_through_json() -> None:
    # GIVEN a day's manifest WHEN written and read back THEN it is equal
    document = manifest()
    assert DayManifest.from_json(document.to_json()) == document
    assert document.as_base() == BaseRef(kind="snapshot", generation=document.generation, dt="2026-11-22")


def test_an_unreadable_manifest_reads_as_none() -> None:
    # GIVEN bytes that are not a manifest WHEN read THEN None (the day is rebuilt and the manifest replaced)
    assert DayManifest.from_json(b"{not json") is None
    assert DayManifest.from_json(b'{"table": "orders"}') is None


def test_the_generation_follows_every_input_and_not_their_listing_order() -> None:
    # GIVEN a day's generation
    generation = day_generation("orders", DAY, EMPTY_BASE, INPUTS)
    # WHEN the inputs are listed in another order THEN it is the same
    assert day_generation("orders", DAY, EMPTY_BASE, list(reversed(INPUTS))) == generation
    # AND any change of an input, of the base, of the day or of the table gives another
    changed = [ObjectInfo(INPUTS[0].key, '"e3"', 20), INPUTS[1]]
    late = [*INPUTS, ObjectInfo("raw/orders/dt=2026-11-22/hour=23/late.jsonl.gz", '"e4"', 5)]
    others = {
        day_generation("orders", DAY, EMPTY_BASE, changed),
        day_generation("orders", DAY, EMPTY_BASE, late),
        day_generation("orders", DAY, BaseRef(kind="snapshot", generation="g", dt="2026-11-21"), INPUTS),
        day_generation("orders", date(2026, 11, 23), EMPTY_BASE, INPUTS),
        day_generation("invoices", DAY, EMPTY_BASE, INPUTS),
    }
    assert generation not in others
    assert len(others) == 5

"""Snapshots on a moto server, day by day: state, deletes, the day boundary, late data, idempotence."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import Any

from changelake.compaction.compactor import Compactor
from changelake.formats.layout import parse_partition_prefix
from changelake.integrations.s3 import S3Store
from changelake.snapshot.builder import SnapshotBuilder
from changelake.storage.limits import BuildLimits
from tests.conftest import Stack
from tests.functional.compaction.test_compaction import CountingS3
from tests.functional.fakes import WrappingClient
from tests.functional.snapshot.support import (
    assert_snapshot_is,
    builder,
    data_keys,
    exact,
    manifest,
    put_raw,
    read_snapshot,
    snapshot_lines,
)
from tests.snapshot_support import change

D1, D2, D3, D4 = date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)
SEQ = 10**20  # 21 digits; later changes get larger numbers, some of 40 digits


def three_days() -> list:
    """Inserts, updates, deletes (a TTL one) and re-inserts over three days."""
    return [
        change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT", v=1),
        change("b", "2026-11-21T09:00:00+00:00", SEQ + 2, name="INSERT", v=1),
        change("c", "2026-11-21T10:00:00+00:00", SEQ + 3, name="INSERT", v=1),
        change("a", "2026-11-21T11:00:00+00:00", SEQ + 4, v=2),  # updated the same day
        change("b", "2026-11-22T01:00:00+00:00", SEQ + 5, name="REMOVE"),  # deleted on day 2
        change("d", "2026-11-22T02:00:00+00:00", SEQ + 6, name="INSERT", v=1),
        change("d", "2026-11-22T03:00:00+00:00", SEQ + 7, name="REMOVE", ttl=True),  # and gone again
        change("b", "2026-11-23T04:00:00+00:00", 10**39 + 8, name="INSERT", v=3),  # re-inserted
        change("c", "2026-11-23T04:30:00+00:00", SEQ + 99, v="older"),  # as a string, the larger number
        change("c", "2026-11-23T05:00:00+00:00", 10**39 + 9, v=2),
    ]


def test_several_days_each_hold_the_table_as_it_stood_at_their_end(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days of changes in raw/, with inserts, updates, deletes and a re-insert
    changes = three_days()
    put_raw(stack, changes)

    # WHEN the snapshot is brought up to day 3
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN each day was built, in order, and holds exactly the items alive at its end, latest state
    assert [(day.day, day.status) for day in chain.days] == [(D1, "built"), (D2, "built"), (D3, "built")]
    for day in (D1, D2, D3):
        assert_snapshot_is(stack, day, changes)
    assert {key[0][1] for key in read_snapshot(stack, D1)} == {"a", "b", "c"}
    assert {key[0][1] for key in read_snapshot(stack, D2)} == {"a", "c"}  # b deleted, d in and out
    assert {key[0][1] for key in read_snapshot(stack, D3)} == {"a", "b", "c"}  # b re-inserted
    # AND each manifest names its base: nothing, then the day before
    assert manifest(stack, D1)["base"]["kind"] == "empty"
    assert manifest(stack, D2)["base"] == {
        "kind": "snapshot",
        "generation": manifest(stack, D1)["generation"],
        "dt": "2026-11-21",
    }
    counts = manifest(stack, D2)["counts"]
    assert (counts["items"], counts["removed"], counts["kept"], counts["changes_applied"]) == (2, 1, 2, 2)


def test_an_item_changed_on_either_side_of_midnight_belongs_to_each_day_in_turn(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN an item changed at the last millisecond of day 1 and at the first of day 2
    changes = [
        change("a", "2026-11-21T12:00:00+00:00", SEQ + 1, name="INSERT", v="noon"),
        change("a", "2026-11-21T23:59:59.999+00:00", SEQ + 2, v="last millisecond"),
        change("a", "2026-11-22T00:00:00+00:00", SEQ + 3, v="first millisecond"),
    ]
    put_raw(stack, changes)

    # WHEN both days are built
    builder(stack, tmp_path).bring_up_to_date("orders", D2)

    # THEN day 1 ends with the 23:59:59.999 change and day 2 with the 00:00:00.000 one
    (day1,) = read_snapshot(stack, D1).values()
    (day2,) = read_snapshot(stack, D2).values()
    assert (day1["item"]["v"], day1["event_time"]) == ("last millisecond", "2026-11-21T23:59:59.999Z")
    assert (day2["item"]["v"], day2["event_time"]) == ("first millisecond", "2026-11-22T00:00:00.000Z")


def test_an_older_change_stamped_after_midnight_does_not_replace_the_previous_days_state(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN change A stamped just after midnight and change B, later by sequence number, stamped just
    # before it (event times are approximate; sequence numbers are the order)
    changes = [
        change("x", "2026-11-21T12:00:00+00:00", SEQ + 100, name="INSERT", v="first"),
        change("x", "2026-11-22T00:00:00.100+00:00", SEQ + 200, v="A"),
        change("x", "2026-11-21T23:59:59.900+00:00", SEQ + 300, v="B"),
    ]
    put_raw(stack, changes)

    # WHEN both days are built
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D2)

    # THEN day 1 ends with B, and so does day 2: A is older than B
    for day in (D1, D2):
        (document,) = read_snapshot(stack, day).values()
        assert (document["item"]["v"], document["sequence_number"]) == ("B", str(SEQ + 300))
        assert_snapshot_is(stack, day, changes)
    # AND day 2 counts A as a change older than the state it met, not as applied
    counts = manifest(stack, D2)["counts"]
    assert (counts["changes_applied"], counts["outdated"], counts["kept"]) == (0, 1, 1)
    assert chain.days[1].status == "built"


def test_an_item_removed_before_midnight_is_not_brought_back_by_an_older_change_after_it(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN items removed just before midnight, each by a REMOVE later (by sequence number) than a
    # change stamped just after midnight: x existed before, y's INSERT itself is the later-stamped one
    changes = [
        change("x", "2026-11-21T12:00:00+00:00", SEQ + 100, name="INSERT", v="first"),
        change("x", "2026-11-22T00:00:00.100+00:00", SEQ + 200, v="A"),
        change("x", "2026-11-21T23:59:59.900+00:00", SEQ + 300, name="REMOVE"),
        change("y", "2026-11-22T00:00:00.200+00:00", SEQ + 400, name="INSERT", v="A"),
        change("y", "2026-11-21T23:59:59.800+00:00", SEQ + 500, name="REMOVE"),
        change("z", "2026-11-21T12:00:00+00:00", SEQ + 600, name="INSERT", v="stays"),
    ]
    put_raw(stack, changes)

    # WHEN three days are built
    builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN x and y are absent on every day from day 1 on: their REMOVEs are their latest changes
    for day in (D1, D2, D3):
        assert {key[0][1] for key in read_snapshot(stack, day)} == {"z"}
        assert_snapshot_is(stack, day, changes)
    # AND the removals are kept beside the data of their day, in a folder that is not data, each the
    # REMOVE's change fields with a null item, and dropped from the next day's (older than 24 hours
    # before its end: no change older than them can come any more)
    folder = "snapshot/orders/dt=2026-11-21/"
    removed = stack.keys(folder + "_removed/")
    assert sorted(stack.keys(folder)) == sorted([folder + "_manifest.json", *data_keys(stack, D1), *removed])
    removals = [exact(line) for key in removed for line in gzip.decompress(stack.read(key)).splitlines()]
    assert [(r["keys"]["pk"], r["item"], r["sequence_number"]) for r in removals] == [
        ("x", None, str(SEQ + 300)),
        ("y", None, str(SEQ + 500)),
    ]
    assert manifest(stack, D1)["counts"]["removed_keys"] == 2
    assert [manifest(stack, day)["counts"]["removed_keys"] for day in (D2, D3)] == [0, 0]
    assert stack.keys("snapshot/orders/dt=2026-11-22/_removed/") == []


def test_redelivered_raw_files_and_a_quiet_day_change_nothing(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1's changes written twice (a redelivery in another file), nothing on day 2, more on day 3
    changes = [*three_days(), change("f", "2026-11-21T11:30:00+00:00", SEQ + 30, name="INSERT")]
    day1 = [c for c in changes if c.event_time.startswith("2026-11-21")]
    day3 = [c for c in changes if c.event_time.startswith("2026-11-23")]
    put_raw(stack, day1 + day3)
    put_raw(stack, [c for c in day1 if c.event_time.startswith("2026-11-21T11")][:1])  # hour 11 again, split

    # WHEN brought up to day 3
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN the quiet day has its own folder equal to day 1, and duplicates are counted, not applied twice
    assert [day.status for day in chain.days] == ["built"] * 3
    expected = [c for c in changes if not c.event_time.startswith("2026-11-22")]
    assert_snapshot_is(stack, D1, expected)
    assert_snapshot_is(stack, D2, expected)
    assert_snapshot_is(stack, D3, expected)
    assert snapshot_lines(stack, D2) == snapshot_lines(stack, D1)
    assert manifest(stack, D1)["counts"]["duplicates"] == 1
    assert manifest(stack, D2)["counts"]["changes_read"] == 0


def test_a_rerun_with_unchanged_inputs_writes_nothing(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days already built
    put_raw(stack, three_days())
    builder(stack, tmp_path).bring_up_to_date("orders", D3)
    before = {
        key: stack.s3.head_object(Bucket=stack.bucket, Key=key)["ETag"] for key in stack.keys("snapshot/")
    }

    # WHEN the same chain is brought up to date again, every day checked
    counting = CountingS3(stack.s3)
    chain = builder(stack, tmp_path, client=counting).bring_up_to_date("orders", D3)

    # THEN every day is unchanged and not a single write was made
    assert [day.status for day in chain.days] == ["unchanged"] * 3
    assert counting.mutations == []
    assert {
        key: stack.s3.head_object(Bucket=stack.bucket, Key=key)["ETag"] for key in stack.keys("snapshot/")
    } == before


def test_late_data_rebuilds_its_day_and_every_later_day(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days built
    changes = three_days()
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D3)
    generations = {day: manifest(stack, day)["generation"] for day in (D1, D2, D3)}

    # WHEN a change of day 1 arrives late (a redrive days later): item c updated, item e inserted
    late = [
        change("c", "2026-11-21T22:00:00+00:00", SEQ + 100, v="late"),
        change("e", "2026-11-21T22:30:00+00:00", SEQ + 101, name="INSERT", v="late"),
    ]
    put_raw(stack, late)
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN day 1 and every later day are rebuilt on it, each a new generation
    assert [day.status for day in chain.days] == ["built"] * 3
    assert all(manifest(stack, day)["generation"] != generations[day] for day in (D1, D2, D3))
    everything = changes + late
    for day in (D1, D2, D3):
        assert_snapshot_is(stack, day, everything)
    # AND day 3's own later change of c still wins over the late one; e lives on in every later day
    assert read_snapshot(stack, D2)[(("pk", "c"), ("sk", "s"))]["item"]["v"] == "late"
    assert read_snapshot(stack, D3)[(("pk", "c"), ("sk", "s"))]["item"]["v"] == "2"
    assert (("pk", "e"), ("sk", "s")) in read_snapshot(stack, D3)
    # AND the superseded generations' files are gone: each day holds one generation
    for day in (D1, D2, D3):
        assert {key.rsplit("/", 1)[1].split("-")[1] for key in data_keys(stack, day)} == {
            manifest(stack, day)["generation"]
        }


def test_trusted_days_are_not_read_and_a_missing_day_is_built_wherever_it_is(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN four days built, then day 2's folder deleted and a late change added to day 1
    changes = [*three_days(), change("a", "2026-11-24T01:00:00+00:00", 10**39 + 20, v=4)]
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D4)
    for key in stack.keys("snapshot/orders/dt=2026-11-22/"):
        stack.s3.delete_object(Bucket=stack.bucket, Key=key)
    put_raw(stack, [change("z", "2026-11-21T23:00:00+00:00", SEQ + 50, name="INSERT")])

    # WHEN brought up to day 4 checking only from day 4 (day 1's late file is not announced)
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D4, check_from=D4)

    # THEN day 1 (the origin) is checked and rebuilt, and so is every day after it, the missing one too
    assert [(day.day, day.status) for day in chain.days] == [
        (D1, "built"),
        (D2, "built"),
        (D3, "built"),
        (D4, "built"),
    ]
    assert (("pk", "z"), ("sk", "s")) in read_snapshot(stack, D4)


def test_days_before_check_from_are_trusted_when_they_exist(stack: Stack, tmp_path: Path) -> None:
    # GIVEN four days built, then a late change of day 2 that no marker announces
    changes = [*three_days(), change("a", "2026-11-24T01:00:00+00:00", 10**39 + 20, v=4)]
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D4)
    put_raw(stack, [change("y", "2026-11-22T23:00:00+00:00", SEQ + 60, name="INSERT")])

    # WHEN checked from day 3 only
    counting = CountingS3(stack.s3)
    chain = builder(stack, tmp_path, client=counting).bring_up_to_date("orders", D4, check_from=D3)

    # THEN only the origin and days 3 and 4 are checked (unchanged): day 2's late file waits for a
    # check that covers it (a late marker, the look-back window, or a manual event)
    assert [(day.day, day.status) for day in chain.days] == [
        (D1, "unchanged"),
        (D3, "unchanged"),
        (D4, "unchanged"),
    ]
    assert counting.mutations == []
    # WHEN every day is checked (what the manual event does)
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D4)
    # THEN day 2 and the later days are rebuilt
    assert [day.status for day in chain.days] == ["unchanged", "built", "built", "built"]
    assert (("pk", "y"), ("sk", "s")) in read_snapshot(stack, D4)


def test_a_small_memory_budget_spills_and_gives_the_same_bytes(stack: Stack, tmp_path: Path) -> None:
    # GIVEN 600 changes of 200 items on one day
    changes = [
        change(f"item-{n % 200:03d}", f"2026-11-21T{n % 24:02d}:{n % 60:02d}:00+00:00", SEQ + n, v=n)
        for n in range(600)
    ]
    put_raw(stack, changes)

    # WHEN built with a budget that spills every few entries, and again (elsewhere) with the default
    small = builder(stack, tmp_path, limits=BuildLimits(memory_budget_bytes=8 * 1024, spill_dir=tmp_path))
    result = small.refresh_day("orders", D1, small.origin("orders").base)  # type: ignore[union-attr]
    spilled = snapshot_lines(stack, D1)
    other = SnapshotBuilder(
        S3Store(stack.bucket, client=stack.s3),
        snapshot_prefix="other",
        limits=BuildLimits(spill_dir=tmp_path),
    )
    other.bring_up_to_date("orders", D1)
    in_memory = [
        line
        for key in stack.keys("other/orders/dt=2026-11-21/")
        if key.endswith(".jsonl.gz")
        for line in gzip.decompress(stack.read(key)).splitlines()
    ]

    # THEN it spilled, and both hold the same lines: the expected 200 items
    assert result.manifest is not None
    assert result.manifest.counts.spilled_runs > 2
    assert spilled == in_memory
    assert_snapshot_is(stack, D1, changes)
    assert len(spilled) == 200


class RecordingGets(WrappingClient):
    """Records the key of every GetObject."""

    def __init__(self, real: Any) -> None:
        super().__init__(real)
        self.gets: list[str] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs["Key"])
        return self.real.get_object(**kwargs)


def compact_all(stack: Stack) -> None:
    compactor = Compactor(S3Store(stack.bucket, client=stack.s3))
    folders = {key.rsplit("/", 1)[0] + "/" for key in stack.keys("raw/")}
    for folder in sorted(folders):
        compactor.compact(parse_partition_prefix("raw", folder))


def test_hours_compacted_from_exactly_their_raw_files_are_read_from_compacted(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 in raw/ (with a redelivered copy) and compacted, then a late file in one of its hours
    changes = [c for c in three_days() if c.event_time.startswith("2026-11-21")]
    put_raw(stack, changes)
    put_raw(stack, [*changes[:1], change("z", "2026-11-21T08:30:00+00:00", SEQ + 40, name="INSERT")])
    compact_all(stack)
    late = [change("y", "2026-11-21T10:30:00+00:00", SEQ + 50, name="INSERT")]
    put_raw(stack, late)

    # WHEN day 1 is built
    recording = RecordingGets(stack.s3)
    chain = builder(stack, tmp_path, client=recording).bring_up_to_date("orders", D1)

    # THEN the hours whose compaction is current are read from compacted/, the hour with the late file
    # from raw/, and the snapshot holds every change
    assert chain.days[0].manifest is not None
    assert chain.days[0].manifest.counts.hours_from_compacted == 3
    raw_read = sorted({key.split("/")[3] for key in recording.gets if key.startswith("raw/")})
    assert raw_read == ["hour=10"]
    everything = [*changes, change("z", "2026-11-21T08:30:00+00:00", SEQ + 40, name="INSERT"), *late]
    assert_snapshot_is(stack, D1, everything)


def test_a_compacted_part_gone_meanwhile_falls_back_to_raw(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 compacted, then one compacted part deleted (as a concurrent recompaction does)
    changes = [c for c in three_days() if c.event_time.startswith("2026-11-21")]
    put_raw(stack, changes)
    compact_all(stack)
    (part,) = [key for key in stack.keys("compacted/orders/dt=2026-11-21/hour=09/") if "/part-" in key]
    stack.s3.delete_object(Bucket=stack.bucket, Key=part)

    # WHEN day 1 is built THEN it reads raw/ instead, and the snapshot is whole
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D1)
    assert chain.failed is None
    assert chain.days[0].manifest is not None
    assert chain.days[0].manifest.counts.hours_from_compacted == 0
    assert_snapshot_is(stack, D1, changes)


def test_an_item_whose_key_holds_a_line_separator_stays_one_item(stack: Stack, tmp_path: Path) -> None:
    # GIVEN an item whose key holds U+2028, inserted on day 1 and changed on day 2 (written lines
    # escape it, so the key read back from day 1's snapshot is the escaped text)
    changes = [
        change("p\u2028k", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT", v=1),
        change("p\u2028k", "2026-11-22T08:00:00+00:00", SEQ + 2, v=2),
    ]
    put_raw(stack, changes)

    # WHEN both days are built THEN day 2 holds the item once, in its new state
    builder(stack, tmp_path).bring_up_to_date("orders", D2)
    assert_snapshot_is(stack, D2, changes)
    assert manifest(stack, D2)["counts"]["updated"] == 1

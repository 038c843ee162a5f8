"""S3 layout: Hive-style hourly partitions, safe table names, quarantine/claim/loss keys."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from changelake.exceptions import RecordRejected, UnsafeNameError
from changelake.formats.layout import (
    Partition,
    bootstrap_prefix,
    check_table_name,
    claim_key,
    compact_time,
    day_of_folder,
    day_prefix,
    lake_tables,
    loss_report_key,
    parse_partition_prefix,
    part_name,
    partition_key,
    quarantine_key,
    raw_file_name,
    raw_file_times,
    table_prefix,
)


@pytest.mark.parametrize(
    ("event_time", "dt", "hour"),
    [
        ("2026-11-28T00:00:00.000Z", date(2026, 11, 28), 0),
        ("2026-11-28T08:59:59.999Z", date(2026, 11, 28), 8),
        ("2026-11-28T23:59:59.999Z", date(2026, 11, 28), 23),
        ("2024-02-29T12:00:00.000Z", date(2024, 2, 29), 12),
    ],
)
def test_partition_of_event_time(event_time: str, dt: date, hour: int) -> None:
    # GIVEN a change record's event_time
    # WHEN its partition is taken THEN it is that UTC day and hour
    assert Partition.of_event_time("orders", event_time) == Partition("orders", dt, hour)


def test_path_and_prefix_pad_the_hour() -> None:
    # GIVEN a partition at hour 7
    partition = Partition("orders", date(2026, 1, 5), 7)
    # WHEN formatted THEN the path is Hive style with a zero-padded hour
    assert partition.path == "orders/dt=2026-01-05/hour=07"
    assert partition.prefix("raw") == "raw/orders/dt=2026-01-05/hour=07/"
    assert partition.prefix("compacted") == "compacted/orders/dt=2026-01-05/hour=07/"
    assert partition_key("raw", partition, "f.jsonl.gz") == "raw/orders/dt=2026-01-05/hour=07/f.jsonl.gz"
    # AND its start is the hour in UTC
    assert partition.start == datetime(2026, 1, 5, 7, tzinfo=UTC)


def test_table_and_day_folders_hold_the_hour_partitions() -> None:
    # GIVEN a table's day in a layer
    partition = Partition("orders", date(2026, 1, 5), 7)
    # WHEN its folders are formatted THEN they are Hive style, with a trailing slash
    assert table_prefix("snapshot", "orders") == "snapshot/orders/"
    assert day_prefix("snapshot", "orders", date(2026, 1, 5)) == "snapshot/orders/dt=2026-01-05/"
    # AND an hour's partition folder lies inside its day's
    assert partition.prefix("raw").startswith(day_prefix("raw", "orders", partition.dt))


def test_a_day_folder_reads_back_as_its_day_and_other_folders_as_none() -> None:
    # GIVEN day folders as listed below a table, a day that does not exist, and other folders
    # WHEN read THEN a day folder gives its day, every other folder None
    assert day_of_folder("dt=2026-01-05/") == date(2026, 1, 5)
    assert [day_of_folder(name) for name in ("dt=2026-02-30/", "_bootstrap/", "dt=2026-01-05")] == [None] * 3
    # AND the bootstrap folder and the data files are named here too
    assert bootstrap_prefix("snapshot", "orders") == "snapshot/orders/_bootstrap/"
    assert part_name("g1", 3) == "part-g1-00003.jsonl.gz"
    assert part_name("g1", 0, ".parquet") == "part-g1-00000.parquet"


class Folders:
    """A store's folder listing: each prefix's immediate sub-folders, as S3 lists them."""

    def __init__(self, *keys: str) -> None:
        self.keys = keys

    def list_folders(self, prefix: str) -> list[str]:
        below = {key[len(prefix) :].split("/", 1)[0] for key in self.keys if key.startswith(prefix)}
        return sorted(f"{prefix}{name}/" for name in below)


def test_lake_tables_are_the_table_folders_of_the_layers_asked_for_sorted() -> None:
    # GIVEN tables in raw/ and snapshot/, one in both, one only in compacted/, and folders that are
    # not table names
    store = Folders(
        "r/orders/dt=2026-01-01/hour=00/a.jsonl.gz",
        "r/orders-v2/dt=2026-01-01/hour=00/a.jsonl.gz",
        "r/ab/x.jsonl.gz",
        "r/a b/x.jsonl.gz",
        "s/orders/dt=2026-01-01/part-1.jsonl.gz",
        "s/inventory/dt=2026-01-01/part-1.jsonl.gz",
        "c/payments/dt=2026-01-01/hour=00/part-1.jsonl.gz",
    )
    # WHEN the tables of raw/ and snapshot/ are listed
    # THEN each table is named once, in name order (not S3's key order, where "orders-v2/" comes
    # before "orders/"), and only from the layers asked for
    assert lake_tables(store, ["r", "s"]) == ["inventory", "orders", "orders-v2"]
    assert lake_tables(store, ["c"]) == ["payments"]
    assert lake_tables(store, []) == []


def test_partitions_sort_by_table_day_hour() -> None:
    # GIVEN partitions out of order WHEN sorted THEN table, then day, then hour decide
    a = Partition("a-table", date(2026, 1, 2), 0)
    b = Partition("b-table", date(2026, 1, 1), 5)
    c = Partition("b-table", date(2026, 1, 1), 10)
    assert sorted([c, b, a]) == [a, b, c]


@pytest.mark.parametrize("hour", [0, 1, 9, 10, 23])
@pytest.mark.parametrize("layer", ["raw", "compacted"])
def test_parse_partition_prefix_round_trips(layer: str, hour: int) -> None:
    # GIVEN a partition and its folder as S3 lists it
    partition = Partition("Orders.v2_x-y", date(2026, 12, 31), hour)
    # WHEN the folder is parsed THEN it is the same partition
    assert parse_partition_prefix(layer, partition.prefix(layer)) == partition


@pytest.mark.parametrize(
    "prefix",
    [
        "compacted/orders/dt=2026-01-01/hour=01/",  # another layer
        "rawx/orders/dt=2026-01-01/hour=01/",
        "raw/orders/dt=2026-01-01/hour=01",  # no trailing slash
        "raw/orders/dt=2026-01-01/hour=1/",
        "raw/orders/dt=2026-1-01/hour=01/",
        "raw/orders/dt=2026-01-01/",
        "raw/orders/hour=01/dt=2026-01-01/",
        "raw/orders/dt=2026-01-01/hour=01/extra/",
        "raw/../dt=2026-01-01/hour=01/",
        "raw/ab/dt=2026-01-01/hour=01/",
        "raw//dt=2026-01-01/hour=01/",
        "raw/orders/",
    ],
)
def test_parse_partition_prefix_rejects_non_partitions(prefix: str) -> None:
    # GIVEN a folder that is not a partition of the raw layer
    # WHEN parsed THEN it is an UnsafeNameError
    with pytest.raises(UnsafeNameError):
        parse_partition_prefix("raw", prefix)


@pytest.mark.parametrize(
    "prefix",
    [
        "raw/orders/dt=2026-02-30/hour=01/",
        "raw/orders/dt=2026-13-01/hour=01/",
        "raw/orders/dt=2026-01-01/hour=24/",
        "raw/orders/dt=2026-01-01/hour=99/",
    ],
)
def test_parse_partition_prefix_rejects_impossible_days_and_hours(prefix: str) -> None:
    # GIVEN a partition-shaped folder naming a day or hour that does not exist
    # WHEN parsed THEN it is an UnsafeNameError, which listing code skips (never a crash)
    with pytest.raises(UnsafeNameError):
        parse_partition_prefix("raw", prefix)


@pytest.mark.parametrize(
    "name", ["abc", "orders", "My_Table.v2-x", "a" * 255, "a..", "..a", ".a.", "___", "-_-"]
)
def test_legal_table_names_are_accepted(name: str) -> None:
    # GIVEN a DynamoDB-legal table name WHEN checked THEN it is returned unchanged
    assert check_table_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "ab",
        "..",
        "...",
        "....",
        "../x",
        "a/b",
        "a\\b",
        "a b",
        "tab\tle",
        "é-table",
        "a" * 256,
        "orders\n",
        "orders/",
        "%2e%2e",
        None,
        5,
        b"orders",
        ["orders"],
    ],
)
def test_unsafe_table_names_are_rejected(name: Any) -> None:
    # GIVEN a name that is not 3-255 of [A-Za-z0-9_.-], is only dots, or is not a string
    # WHEN checked THEN it is an UnsafeNameError (a RecordRejected) quoting the name
    with pytest.raises(UnsafeNameError, match="table name is not a safe path segment") as info:
        check_table_name(name)
    assert isinstance(info.value, RecordRejected)


def test_quarantine_claim_and_loss_keys() -> None:
    # GIVEN prefixes, a table, a day and a digest
    digest = "ab" + "c" * 38
    day = date(2026, 3, 4)
    # WHEN keys are built THEN they follow docs/contracts.md's layout
    assert (
        quarantine_key("quarantine", "orders", day, digest)
        == f"quarantine/orders/dt=2026-03-04/{digest}.jsonl.gz"
    )
    assert claim_key("claims", digest) == f"claims/ab/{digest}.jsonl.gz"
    assert loss_report_key("lost", "orders", day, digest) == f"lost/orders/dt=2026-03-04/{digest}.json"


@pytest.mark.parametrize(
    "name",
    [
        "20261128T120000100Z-0123456789abcdef0123456789abcdef.jsonl.gz",  # written before the last time
        "20261128T125959999Z-20261128T120000100Z-0123456789abcdef0123456789abcdef.jsonl.gz",  # inverted
        "20261128T120000100Z-20261128T125959999Z-not-a-digest.jsonl.gz",
        "by-hand.jsonl.gz",
    ],
)
def test_a_raw_name_without_a_readable_time_range_may_hold_any_time(name: str) -> None:
    assert raw_file_times(name) is None


def test_raw_names_carry_their_time_range_in_sortable_form() -> None:
    name = raw_file_name("2026-11-28T12:00:00.100Z", "2026-11-28T12:09:00.000Z", "0" * 32)
    assert name == f"20261128T120000100Z-20261128T120900000Z-{'0' * 32}.jsonl.gz"
    assert raw_file_times(name) == ("20261128T120000100Z", "20261128T120900000Z")
    assert compact_time("2026-11-28T12:00:00.100Z") < compact_time("2026-11-28T12:00:01.000Z")

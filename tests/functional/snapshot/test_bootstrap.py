"""Bootstrap from a DynamoDB full export in AWS's documented layout (fixtures under tests/fixtures)."""

from __future__ import annotations

import gzip
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from changelake.exceptions import DeliveryError, InvalidEventError
from changelake.integrations.s3 import S3Store
from changelake.snapshot.bootstrap import Bootstrapper
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.events import BootstrapEvent
from changelake.snapshot.parquet import ParquetSnapshots
from changelake.snapshot.service import SnapshotService
from changelake.storage.limits import BuildLimits
from tests.conftest import REGION, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.helpers import reference_image
from tests.functional.snapshot.support import (
    clock,
    create_table,
    data_keys,
    manifest,
    put_raw,
    read_snapshot,
    snapshot_lines,
)
from tests.functional.snapshot.test_parquet import parquet, parquet_keys
from tests.functional.snapshot.test_publication import DyingS3
from tests.snapshot_support import change

EXPORT = Path(__file__).resolve().parents[2] / "fixtures" / "snapshot" / "export"
EXPORT_ID = "01795240800000-a1b2c3d4"
PREFIX = f"exports/orders/AWSDynamoDB/{EXPORT_ID}"
EARLIER, D0, D1, D2 = date(2026, 11, 19), date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)
SEQ = 10**20


def fixture_items() -> dict[str, dict[str, Any]]:
    """The export's items by pk, read independently (numbers as Decimal)."""
    items = {}
    for path in sorted((EXPORT / "AWSDynamoDB" / EXPORT_ID / "data").glob("*.json.gz")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            image = reference_image(json.loads(line)["Item"])
            items[image["pk"]] = image
    return items


@pytest.fixture
def export(stack: Stack) -> dict[str, Any]:
    """The fixture export in the bucket, and the table it is of (for its key schema)."""
    for path in sorted((EXPORT / "AWSDynamoDB" / EXPORT_ID).rglob("*")):
        if path.is_file():
            key = f"{PREFIX}/{path.relative_to(EXPORT / 'AWSDynamoDB' / EXPORT_ID)}"
            stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=path.read_bytes())
    create_table()
    return {"table": "orders", "bootstrap": f"s3://{stack.bucket}/{PREFIX}/manifest-summary.json"}


def service(
    stack: Stack,
    tmp_path: Path,
    now: str = "2026-11-23T00:45:00+00:00",
    *,
    client: Any = None,
    parquet: ParquetSnapshots | None = None,
) -> SnapshotService:
    store = S3Store(stack.bucket, client=client or stack.s3)
    builder = SnapshotBuilder(
        store, limits=BuildLimits(spill_dir=tmp_path), derived=[parquet] if parquet else (), clock=clock(now)
    )
    return SnapshotService(builder, clock=clock(now))


def item_changes() -> list:
    """Changes around the export (06:00 on day 1): one the export already holds, one after it, a delete,
    and a new item the next day. Items 4 and 5 never change again."""
    return [
        change("customer#1", "2026-11-21T05:00:00+00:00", SEQ + 1, sk="order#1", v="before the export"),
        change("customer#2", "2026-11-21T07:00:00+00:00", SEQ + 2, sk="order#2", v="after the export"),
        change("customer#3", "2026-11-21T08:00:00+00:00", SEQ + 3, sk="order#3", name="REMOVE"),
        change("customer#6", "2026-11-22T09:00:00+00:00", SEQ + 4, sk="order#6", name="INSERT", v="new"),
    ]


def test_bootstrap_is_the_base_and_unchanged_items_live_on_exactly(
    stack: Stack, export: dict[str, Any], tmp_path: Path, load_handler: HandlerLoader
) -> None:
    # GIVEN the export of 2026-11-21T06:00Z and changes from shortly before it on
    put_raw(stack, item_changes())
    handler = load_handler("snapshot", stack.environment)

    # WHEN SnapshotFunction gets the bootstrap event
    summary = handler.lambda_handler(export, FakeLambdaContext())

    # THEN it reports the items read and the export time, with no gap (the lake starts before it)
    assert summary["items_read"] == 5
    assert summary["export_time"] == "2026-11-21T06:00:00.000Z"
    assert summary["gap"] == {
        "export_time": "2026-11-21T06:00:00.000Z",
        "first_change": "2026-11-21T05:00:00.000Z",
        "missing_possible": False,
    }
    assert summary["bootstrap"]["first_day"] == "2026-11-21"
    bootstrap = json.loads(stack.read("snapshot/orders/_bootstrap/_manifest.json"))
    assert bootstrap["key_attributes"] == ["pk", "sk"]  # partition key first, whatever the schema's order

    # WHEN the days are built up to day 2
    result = service(stack, tmp_path).handle({"table": "orders", "dt": "2026-11-22"}, FakeLambdaContext())

    # THEN the first snapshot is the export's day, built on the bootstrap, with the day's changes on top
    assert result.built == ["orders/dt=2026-11-21", "orders/dt=2026-11-22"]
    assert manifest(stack, D1)["base"]["kind"] == "bootstrap"
    exported = fixture_items()
    day1 = {key[0][1]: document for key, document in read_snapshot(stack, D1).items()}
    day2 = {key[0][1]: document for key, document in read_snapshot(stack, D2).items()}
    assert sorted(day1) == ["customer#1", "customer#2", "customer#4", "customer#5"]
    assert sorted(day2) == ["customer#1", "customer#2", "customer#4", "customer#5", "customer#6"]
    assert day1["customer#2"]["item"]["v"] == "after the export"
    # AND items that never changed again keep the export's exact values and null change fields
    for pk in ("customer#4", "customer#5"):
        for day in (day1, day2):
            assert day[pk]["item"] == exported[pk]
            assert day[pk]["item"]["price"] == Decimal("12345678901234567890123456789012345678")
            assert (day[pk]["event_id"], day[pk]["event_time"], day[pk]["sequence_number"]) == (
                None,
                None,
                None,
            )
    # AND days before the export have no snapshot
    assert result.days_built == 2


def test_a_lake_that_starts_after_the_export_reports_a_gap(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN changes only from 07:00, an hour after the export
    put_raw(stack, item_changes()[1:])

    # WHEN bootstrapped
    summary = service(stack, tmp_path).handle(export, FakeLambdaContext())

    # THEN the gap is reported: changes between 06:00 and 07:00 may be missing
    assert summary.as_dict()["gap"] == {
        "export_time": "2026-11-21T06:00:00.000Z",
        "first_change": "2026-11-21T07:00:00.000Z",
        "missing_possible": True,
    }
    assert summary.metrics()["BootstrapGaps"] == 1


def test_a_second_bootstrap_of_the_same_export_writes_nothing(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a bootstrapped table
    bootstrapper = Bootstrapper(
        SnapshotBuilder(S3Store(stack.bucket, client=stack.s3), limits=BuildLimits(spill_dir=tmp_path))
    )
    event = BootstrapEvent.model_validate(export)
    first = bootstrapper.run(event)
    keys = stack.keys("snapshot/")

    # WHEN bootstrapped again from the same export THEN nothing is written
    again = bootstrapper.run(event)
    assert (first.status, again.status, again.writes) == ("bootstrapped", "unchanged", 0)
    assert stack.keys("snapshot/") == keys


def test_days_before_the_export_are_refused_and_never_built(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a bootstrapped table with changes in raw/ from the day before the export
    put_raw(stack, [change("customer#9", "2026-11-20T12:00:00+00:00", SEQ, name="INSERT"), *item_changes()])
    run = service(stack, tmp_path)
    run.handle(export, FakeLambdaContext())

    # WHEN the day before the export is asked for THEN it is refused
    with pytest.raises(InvalidEventError, match="before orders's first day 2026-11-21") as refused:
        run.handle({"table": "orders", "dt": "2026-11-20"}, FakeLambdaContext())
    assert refused.value.field == "dt"
    # AND building later days never creates it; the export already holds its changes
    run.handle({"table": "orders", "dt": "2026-11-22"}, FakeLambdaContext())
    assert stack.keys(f"snapshot/orders/dt={D0.isoformat()}/") == []
    assert (("pk", "customer#9"), ("sk", "s")) not in read_snapshot(stack, D1)


def stream_only_days() -> list:
    """Changes of the two days before the export's day, which a stream-only snapshot turns into days."""
    return [
        change("customer#9", "2026-11-19T12:00:00+00:00", SEQ - 2, sk="order#9", name="INSERT", v="first"),
        change("customer#9", "2026-11-20T12:00:00+00:00", SEQ - 1, sk="order#9", v="second"),
    ]


def test_days_snapshotted_before_a_later_bootstrap_are_retired_with_their_parquet(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN a table snapshotted from its stream alone for the two days before its export's day, as JSON
    # and as Parquet
    put_raw(stack, [*stream_only_days(), *item_changes()])
    run = service(stack, tmp_path, parquet=parquet(stack, tmp_path))
    run.handle({"table": "orders", "dt": D0.isoformat()}, FakeLambdaContext())
    assert all(data_keys(stack, day) and parquet_keys(stack, day) for day in (EARLIER, D0))

    # WHEN the table is bootstrapped from the export of the next day
    summary = run.handle(export, FakeLambdaContext())

    # THEN no reader finds those days or their Parquet any more, and the summary says two were retired
    for day in (EARLIER, D0):
        assert stack.keys(f"snapshot/orders/dt={day.isoformat()}/") == []
        assert stack.keys(f"snapshot-parquet/orders/dt={day.isoformat()}/") == []
    assert (summary.as_dict()["days_retired"], summary.metrics()["DaysRetired"]) == (2, 2)
    assert summary.bootstrap is not None
    assert summary.bootstrap["days_retired"] == 2
    # AND the history starts on the export's day, built on the bootstrap; nothing is left to retire
    result = run.handle({"table": "orders", "dt": D2.isoformat()}, FakeLambdaContext())
    assert (result.built, result.days_retired) == (["orders/dt=2026-11-21", "orders/dt=2026-11-22"], 0)
    assert manifest(stack, D1)["base"]["kind"] == "bootstrap"
    assert {key.split("/")[2] for key in stack.keys("snapshot/orders/dt=")} == {
        "dt=2026-11-21",
        "dt=2026-11-22",
    }
    # AND a second bootstrap of the same export retires nothing and writes nothing
    keys = stack.keys("snapshot/")
    again = run.handle(export, FakeLambdaContext())
    assert (again.days_retired, again.bootstrap and again.bootstrap["status"]) == (0, "unchanged")
    assert stack.keys("snapshot/") == keys


def test_a_bootstrap_that_dies_while_retiring_days_is_completed_by_the_next_run(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN two days snapshotted from the stream alone before the export's day
    put_raw(stack, [*stream_only_days(), *item_changes()])
    service(stack, tmp_path).handle({"table": "orders", "dt": D0.isoformat()}, FakeLambdaContext())
    before = snapshot_lines(stack, D0)

    # WHEN the bootstrap dies right after deleting the second day's manifest, before its data files
    dying = DyingS3(
        stack.s3,
        lambda operation, kwargs: (
            operation == "delete_object"
            and kwargs["Key"] == f"snapshot/orders/dt={D0.isoformat()}/_manifest.json"
        ),
        after=True,
    )
    with pytest.raises(DeliveryError):
        service(stack, tmp_path, client=dying).handle(export, FakeLambdaContext())

    # THEN the bootstrap is published and the first day retired; the second has no manifest any more
    # (a reader of manifests sees no day), and a reader of its data files still sees it whole
    assert dying.dead
    assert stack.keys("snapshot/orders/_bootstrap/_manifest.json")
    assert stack.keys(f"snapshot/orders/dt={EARLIER.isoformat()}/") == []
    assert not stack.keys(f"snapshot/orders/dt={D0.isoformat()}/_manifest.json")
    assert snapshot_lines(stack, D0) == before

    # WHEN the next run comes: the nightly one
    summary = service(stack, tmp_path).handle({"detail-type": "Scheduled Event"}, FakeLambdaContext())

    # THEN it retires what was left, and builds the days from the export's day on
    assert summary.days_retired == 1
    assert stack.keys(f"snapshot/orders/dt={D0.isoformat()}/") == []
    assert summary.built == ["orders/dt=2026-11-21", "orders/dt=2026-11-22"]


def _edit(stack: Stack, key: str, edit: Any) -> None:
    body = stack.read(key)
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=edit(body))


def _summary_with(**fields: Any) -> Any:
    return lambda body: json.dumps({**json.loads(body), **fields}).encode()


DATA = f"{PREFIX}/data/x4ovvl7bbe6bvmyyemq4wr5pqe.json.gz"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda s: s.s3.delete_object(Bucket=s.bucket, Key=f"{PREFIX}/manifest-summary.json"),
            "does not exist",
        ),
        (lambda s: _edit(s, f"{PREFIX}/manifest-summary.json", lambda b: b"{"), "is not an export summary"),
        (lambda s: _edit(s, f"{PREFIX}/manifest-summary.json", _summary_with(outputFormat="ION")), "ION"),
        (
            lambda s: _edit(
                s, f"{PREFIX}/manifest-summary.json", _summary_with(exportType="INCREMENTAL_EXPORT")
            ),
            "INCREMENTAL",
        ),
        (
            lambda s: _edit(
                s,
                f"{PREFIX}/manifest-summary.json",
                _summary_with(tableArn="arn:aws:dynamodb:us-east-1:1:table/other"),
            ),
            "of table 'other'",
        ),
        (lambda s: _edit(s, f"{PREFIX}/manifest-summary.json", _summary_with(itemCount=6)), "itemCount 6"),
        (
            lambda s: s.s3.delete_object(Bucket=s.bucket, Key=f"{PREFIX}/manifest-files.json"),
            "manifest-files.json does not exist",
        ),
        (
            lambda s: s.s3.delete_object(Bucket=s.bucket, Key=DATA),
            r"listed in manifest-files.json\) does not exist",
        ),
        (lambda s: _edit(s, DATA, lambda b: b"not gzip"), "not valid gzip"),
        (
            lambda s: _edit(s, DATA, lambda b: gzip.compress(gzip.decompress(b) + b'{"NotItem": {}}\n')),
            "line 4: not an",
        ),
        (
            lambda s: _edit(
                s, DATA, lambda b: gzip.compress(b"".join(gzip.decompress(b).splitlines(True)[:2]))
            ),
            "holds 2 items; manifest-files.json says 3",
        ),
        (
            lambda s: _edit(
                s, DATA, lambda b: gzip.compress(gzip.decompress(b).replace(b'"pk"', b'"PK"', 1))
            ),
            "line 1: the item has no key attribute 'pk'",
        ),
    ],
)
def test_a_broken_export_is_refused_naming_the_object_and_nothing_is_written(
    stack: Stack, export: dict[str, Any], tmp_path: Path, damage: Any, message: str
) -> None:
    # GIVEN the export damaged in one way
    damage(stack)
    # WHEN bootstrapped THEN it is refused on the bootstrap field, saying what is wrong with which object
    with pytest.raises(InvalidEventError, match=message) as refused:
        service(stack, tmp_path).handle(export, FakeLambdaContext())
    assert refused.value.field == "bootstrap"
    # AND nothing is written: no object, no upload left open
    assert stack.keys("snapshot/") == []
    assert stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", []) == []


def test_an_export_outside_exports_or_of_an_unknown_table_is_refused(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN an export URL in another bucket, and the export's table deleted
    elsewhere = dict(export, bootstrap=f"s3://another-bucket/{PREFIX}/manifest-summary.json")
    outside = dict(
        export, bootstrap=f"s3://{stack.bucket}/{PREFIX.replace('exports/', 'other/')}/manifest-summary.json"
    )
    # WHEN bootstrapped THEN another bucket or prefix is refused on "bootstrap", the missing table on "table"
    for event in (elsewhere, outside):
        with pytest.raises(InvalidEventError, match=f"must be under s3://{stack.bucket}/exports/") as refused:
            service(stack, tmp_path).handle(event, FakeLambdaContext())
        assert refused.value.field == "bootstrap"
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName="orders")
    with pytest.raises(InvalidEventError, match="orders does not exist") as refused:
        service(stack, tmp_path).handle(export, FakeLambdaContext())
    assert refused.value.field == "table"
    assert stack.keys("snapshot/") == []


def test_separators_in_exported_strings_are_escaped_one_item_per_line(
    stack: Stack, export: dict[str, Any], tmp_path: Path
) -> None:
    # GIVEN exported items whose strings hold a raw U+2028 (valid in JSON, a line break to splitlines)
    _edit(
        stack,
        DATA,
        lambda b: gzip.compress(gzip.decompress(b).replace("Crème".encode(), "Cr\u2028ème".encode())),
    )

    # WHEN bootstrapped
    service(stack, tmp_path).handle(export, FakeLambdaContext())

    # THEN the base holds every item on one line each, the separator escaped and its value unchanged
    (key,) = [k for k in stack.keys("snapshot/orders/_bootstrap/") if k.endswith(".jsonl.gz")]
    text = gzip.decompress(stack.read(key)).decode()
    assert "\u2028" not in text
    assert len(text.splitlines()) == 5
    assert sum(json.loads(line)["item"]["name"].startswith("Cr\u2028ème") for line in text.splitlines()) == 3

"""Snapshots that fail: a crash before or after the commit, two runs at once, an unreadable change."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from changelake.integrations.s3 import S3Store
from changelake.snapshot.builder import SnapshotBuilder
from changelake.storage.limits import BuildLimits
from tests.conftest import Stack
from tests.functional.compaction.test_compaction import MUTATING, CountingS3
from tests.functional.fakes import WrappingClient, client_error
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

D1, D2, D3 = date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23)
SEQ = 10**20


def history() -> list:
    return [
        change("a", "2026-11-21T08:00:00+00:00", SEQ + 1, name="INSERT", v=1),
        change("b", "2026-11-21T09:00:00+00:00", SEQ + 2, name="INSERT", v=1),
        change("a", "2026-11-22T10:00:00+00:00", SEQ + 3, v=2),
        change("c", "2026-11-23T11:00:00+00:00", SEQ + 4, name="INSERT", v=1),
    ]


class DyingS3(WrappingClient):
    """The process dies at a chosen call: that call and every mutating call after it fail, so nothing
    is cleaned up (as when Lambda's sandbox is killed). ``dies_at(operation, kwargs)`` picks the call;
    with ``after=True`` the chosen call itself still succeeds."""

    def __init__(
        self, real: Any, dies_at: Callable[[str, dict[str, Any]], bool], *, after: bool = False
    ) -> None:
        super().__init__(real)
        self.dies_at = dies_at
        self.after = after
        self.dead = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name not in MUTATING:
            return method

        def call(**kwargs: Any) -> Any:
            if self.dead:
                raise client_error("InternalError", name)
            if self.dies_at(name, kwargs):
                self.dead = True
                if self.after:
                    return method(**kwargs)
                raise client_error("InternalError", name)
            return method(**kwargs)

        return call


def manifest_put_of(day: date) -> Callable[[str, dict[str, Any]], bool]:
    def chosen(operation: str, kwargs: dict[str, Any]) -> bool:
        return (
            operation == "put_object"
            and kwargs["Key"] == f"snapshot/orders/dt={day.isoformat()}/_manifest.json"
        )

    return chosen


def open_uploads(stack: Stack) -> list[str]:
    return [
        upload["Key"] for upload in stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", [])
    ]


def test_a_run_that_dies_before_the_commit_leaves_every_day_as_it_was(stack: Stack, tmp_path: Path) -> None:
    # GIVEN three days built, then a late change of day 2
    changes = history()
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D3)
    before = {day: snapshot_lines(stack, day) for day in (D1, D2, D3)}
    late = [change("b", "2026-11-22T23:00:00+00:00", SEQ + 10, v="late")]
    put_raw(stack, late)

    # WHEN the rebuild dies at day 2's commit (its parts uploaded, nothing cleaned up)
    dying = DyingS3(stack.s3, manifest_put_of(D2))
    chain = builder(stack, tmp_path, client=dying).bring_up_to_date("orders", D3)

    # THEN the run reports day 2 failed, and every day still reads whole as before (the parts of the
    # dead run are open uploads, which no reader sees)
    assert dying.dead
    assert chain.failed is not None
    assert "orders/dt=2026-11-22" in chain.failed
    assert {day: snapshot_lines(stack, day) for day in (D1, D2, D3)} == before
    assert [key for key in open_uploads(stack) if "dt=2026-11-22" in key]

    # WHEN the next run comes
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN days 2 and 3 are rebuilt with the late change
    assert [day.status for day in chain.days] == ["unchanged", "built", "built"]
    for day in (D1, D2, D3):
        assert_snapshot_is(stack, day, changes + late)


def test_a_run_that_dies_after_the_commit_is_rolled_forward_without_a_rebuild(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN two days built, then a late change of day 2
    changes = history()[:3]
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D2)
    old = snapshot_lines(stack, D2)
    late = [change("b", "2026-11-22T23:00:00+00:00", SEQ + 10, v="late")]
    put_raw(stack, late)

    # WHEN the rebuild dies right after committing day 2's manifest (its parts not yet completed)
    dying = DyingS3(stack.s3, manifest_put_of(D2), after=True)
    builder(stack, tmp_path, client=dying).bring_up_to_date("orders", D2)

    # THEN readers of the folder still see the old generation, whole
    assert dying.dead
    assert snapshot_lines(stack, D2) == old

    # WHEN the next run comes
    counting = CountingS3(stack.s3)
    chain = builder(stack, tmp_path, client=counting).bring_up_to_date("orders", D2)

    # THEN it completes the committed generation (no new upload: the build is not redone)
    assert [day.status for day in chain.days] == ["unchanged", "completed"]
    assert set(counting.mutations) == {"complete_multipart_upload", "delete_object"}
    assert_snapshot_is(stack, D2, changes + late)
    assert open_uploads(stack) == []


def test_the_removed_keys_are_published_and_replaced_with_their_day(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 2 built with item b removed, then a late change of day 2 inserting and removing item c
    changes = [*history()[:3], change("b", "2026-11-22T11:00:00+00:00", SEQ + 5, name="REMOVE")]
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D2)
    folder = f"snapshot/orders/dt={D2.isoformat()}/_removed/"
    (old,) = stack.keys(folder)
    late = [
        change("c", "2026-11-22T23:00:00+00:00", SEQ + 10, name="INSERT", v=1),
        change("c", "2026-11-22T23:30:00+00:00", SEQ + 11, name="REMOVE"),
    ]
    put_raw(stack, late)

    # WHEN the rebuild dies right after committing day 2's manifest, and the next run comes
    dying = DyingS3(stack.s3, manifest_put_of(D2), after=True)
    builder(stack, tmp_path, client=dying).bring_up_to_date("orders", D2)
    assert dying.dead
    assert stack.keys(folder) == [old]  # the new generation's removed keys are still open uploads
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D2)

    # THEN it completes the committed generation: its removed keys replace the old ones, b and c
    assert [day.status for day in chain.days] == ["unchanged", "completed"]
    (new,) = stack.keys(folder)
    assert new != old
    assert new == manifest(stack, D2)["removed"][0]["key"]
    removed = [exact(line)["keys"]["pk"] for line in gzip.decompress(stack.read(new)).splitlines()]
    assert removed == ["b", "c"]
    assert_snapshot_is(stack, D2, changes + late)
    assert open_uploads(stack) == []


def test_two_runs_at_once_publish_one_whole_day(stack: Stack, tmp_path: Path) -> None:
    # GIVEN day 1 in raw/, and a run that will be overtaken just before its commit by a second run,
    # which also sees a late file the first one did not list
    changes = history()[:2]
    put_raw(stack, changes)
    late = [change("c", "2026-11-21T23:00:00+00:00", SEQ + 10, name="INSERT")]
    second = builder(stack, tmp_path / "second")

    class Overtaken(WrappingClient):
        def put_object(self, **kwargs: Any) -> Any:
            if kwargs["Key"].endswith("_manifest.json") and not self.calls:
                self._count("overtaken")
                put_raw(stack, late)
                second.bring_up_to_date("orders", D1)
            return self.real.put_object(**kwargs)

    overtaken = Overtaken(stack.s3)
    first = builder(stack, tmp_path / "first", client=overtaken)

    # WHEN the first run builds day 1
    chain = first.bring_up_to_date("orders", D1)

    # THEN its commit lost, it looked again and found the day done by the second run
    assert overtaken.calls == {"overtaken": 1}
    assert [day.status for day in chain.days] == ["unchanged"]
    # AND the day holds exactly one generation, with the late change, and no upload is left open
    assert_snapshot_is(stack, D1, changes + late)
    assert {key.rsplit("/", 1)[1].split("-")[1] for key in data_keys(stack, D1)} == {
        manifest(stack, D1)["generation"]
    }
    assert open_uploads(stack) == []


def test_an_unreadable_change_is_reported_with_its_file_and_line_and_its_day_is_not_published(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN day 1 fine, and on day 2 a raw object whose second line is not a change record
    changes = history()
    put_raw(stack, [c for c in changes if c.event_time < "2026-11-22"])
    bad_key = "raw/orders/dt=2026-11-22/hour=10/20261122T100000000Z-bad.jsonl.gz"
    body = changes[2].line + b"\n{not json\n"
    stack.s3.put_object(Bucket=stack.bucket, Key=bad_key, Body=gzip.compress(body))
    put_raw(stack, [changes[3]])

    # WHEN brought up to day 3
    chain = builder(stack, tmp_path).bring_up_to_date("orders", D3)

    # THEN day 1 is published, day 2 is not (nor day 3, which builds on it), and the error names the line
    assert [(day.day, day.status) for day in chain.days] == [(D1, "built")]
    assert chain.failed is not None
    assert f"s3://{stack.bucket}/{bad_key} line 2: not a JSON change record" in chain.failed
    assert stack.keys("snapshot/orders/dt=2026-11-22/") == []
    assert stack.keys("snapshot/orders/dt=2026-11-23/") == []
    assert open_uploads(stack) == []
    assert read_snapshot(stack, D1)


def test_a_raw_object_that_is_not_gzip_is_named(stack: Stack, tmp_path: Path) -> None:
    # GIVEN a raw object of day 1 that is not gzip
    key = "raw/orders/dt=2026-11-21/hour=08/broken.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b"plain text, not gzip")

    # WHEN day 1 is built THEN it fails naming the object, and nothing is published
    chain = SnapshotBuilder(
        S3Store(stack.bucket, client=stack.s3), limits=BuildLimits(spill_dir=tmp_path)
    ).bring_up_to_date("orders", D1)
    assert chain.failed is not None
    assert f"s3://{stack.bucket}/{key}: not valid gzip" in chain.failed
    assert stack.keys("snapshot/") == []


def test_a_base_replaced_under_a_run_is_not_built_on(stack: Stack, tmp_path: Path) -> None:
    # GIVEN two days built, and a run about to check day 2 when a late change of day 1 arrives and a
    # second run rebuilds day 1 (only) just after the first run read day 2's manifest
    changes = history()[:3]
    put_raw(stack, changes)
    builder(stack, tmp_path).bring_up_to_date("orders", D2)
    late = [change("b", "2026-11-21T23:00:00+00:00", SEQ + 10, v="late")]
    second = builder(stack, tmp_path / "second")

    class Interleaved(WrappingClient):
        def get_object(self, **kwargs: Any) -> Any:
            response = self.real.get_object(**kwargs)
            if kwargs["Key"] == "snapshot/orders/dt=2026-11-22/_manifest.json" and not self.calls:
                self._count("interleaved")
                put_raw(stack, late)
                second.bring_up_to_date("orders", D1)
            return response

    interleaved = Interleaved(stack.s3)

    # WHEN the first run brings the chain to day 2, checking day 2 only
    chain = builder(stack, tmp_path, client=interleaved).bring_up_to_date("orders", D2, check_from=D2)

    # THEN it noticed day 1 moved, checked again from there, and day 2 is built on the new day 1
    assert interleaved.calls == {"interleaved": 1}
    assert chain.failed is None
    assert manifest(stack, D2)["base"]["generation"] == manifest(stack, D1)["generation"]
    assert_snapshot_is(stack, D2, changes + late)

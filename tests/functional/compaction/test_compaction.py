"""Compaction on a moto server: exactly-once output, late data, idempotence, crashes, races, hand-off."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from changelake.compaction.check import FullCheck
from changelake.compaction.compactor import CompactionSummary, Compactor
from changelake.compaction.events import ManualEvent
from changelake.compaction.service import CompactionService, self_invoker
from changelake.exceptions import CompactionError, InvalidEventError
from changelake.formats.change_line import ChangeLine, order_key, parse_change_line, to_change_line
from changelake.formats.layout import Partition, partition_key
from changelake.ingest.aggregator import raw_object
from changelake.integrations.lambda_invoke import LambdaInvoker
from changelake.integrations.s3 import S3Store
from changelake.late import LateMarkers
from changelake.settings import build_limits
from changelake.storage.limits import BuildLimits
from changelake_testing.stream_records import change_batch
from tests.conftest import BUCKET, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import FailingPutS3, WrappingClient, client_error
from tests.functional.memory_s3 import InMemoryS3
from tests.functional.turns import S3_REQUESTS, RunThread, Turn, Turns, TurnTakingS3

START = datetime(2026, 11, 22, 12, tzinfo=UTC)
MUTATING = S3_REQUESTS - {"list_objects_v2", "get_object", "head_object"}


def changes(seed: int, count: int, *, table: str = "orders", first: int = 10**20) -> list[ChangeLine]:
    """``count`` change lines of one hour of ``table`` (12:00 to 12:59:59, 2026-11-22)."""
    records = change_batch(
        random.Random(seed),
        count,
        tables=(table,),
        start=START.timestamp(),
        span_seconds=3599,
        item_bytes=300,
        first_sequence=first,
    )
    return [to_change_line(record) for record in records]


def put_raw(stack: Stack, lines: list[ChangeLine], client: Any = None) -> str:
    """One raw/ object exactly as the aggregator writes it."""
    name, body = raw_object(lines)
    key = partition_key("raw", Partition.of_event_time(lines[0].table, lines[0].event_time), name)
    (client or stack.s3).put_object(Bucket=stack.bucket, Key=key, Body=body)
    return key


def partition_of(table: str = "orders") -> Partition:
    return Partition(table, date(2026, 11, 22), 12)


def part_keys(stack: Stack, partition: Partition) -> list[str]:
    return [
        key
        for key in stack.keys(partition.prefix("compacted"))
        if key.rsplit("/", 1)[1].startswith("part-") and key.endswith(".jsonl.gz")
    ]


def glob_lines(stack: Stack, partition: Partition) -> list[bytes]:
    """What a reader globbing ``hour=HH/*.jsonl.gz`` sees."""
    return [
        line for key in part_keys(stack, partition) for line in gzip.decompress(stack.read(key)).splitlines()
    ]


def manifest(stack: Stack, partition: Partition) -> dict[str, Any]:
    return dict(json.loads(stack.read(partition.prefix("compacted") + "_manifest.json")))


def expected_lines(*batches: list[ChangeLine]) -> list[bytes]:
    unique = {change.event_id: change for batch in batches for change in batch}
    return [change.line for change in sorted(unique.values(), key=order_key)]


class CountingS3(WrappingClient):
    """Counts every call; fails the ``fail_at``-th mutating call (``InternalError`` before it reaches
    S3, or with ``lose_answer`` a read timeout after S3 did it, as the fault layer's lost answer);
    runs ``hook`` before a chosen operation (once)."""

    def __init__(
        self,
        real: Any,
        *,
        fail_at: int | None = None,
        lose_answer: bool = False,
        hook: tuple[str, Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        super().__init__(real)
        self.fail_at = fail_at
        self.lose_answer = lose_answer
        self.hook = hook
        self.mutations: list[str] = []
        self.failed_operation: str | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if name not in MUTATING and (self.hook is None or self.hook[0] != name):
            return method

        def call(**kwargs: Any) -> Any:
            self._count(name)
            if self.hook is not None and self.hook[0] == name:
                hook, self.hook = self.hook[1], None
                hook(kwargs)
            if name in MUTATING:
                self.mutations.append(name)
                if len(self.mutations) == self.fail_at:
                    self.failed_operation = name
                    if self.lose_answer:
                        method(**kwargs)
                        raise ReadTimeoutError(endpoint_url=f"after {name}")
                    raise client_error("InternalError", name)
            return method(**kwargs)

        return call


def compactor(stack: Stack, client: Any = None, **limits: Any) -> Compactor:
    """A compactor on ``stack`` (through ``client``), with the ``BuildLimits`` fields given."""
    return Compactor(S3Store(stack.bucket, client=client or stack.s3), limits=BuildLimits(**limits))


def wired_service(stack: Stack, client: Any = None, **options: Any) -> CompactionService:
    """The service as the handler wires it: the late markers of the same bucket."""
    store = S3Store(stack.bucket, client=client or stack.s3)
    return CompactionService(Compactor(store), markers=LateMarkers(store), **options)


def test_redelivered_raw_files_compact_to_exactly_once_ordered_output(stack: Stack) -> None:
    # GIVEN an hour of 300 changes in three raw files, two of which were redelivered (written twice
    # with different batching, so the same changes sit in several files)
    batch = changes(1, 300)
    put_raw(stack, batch[:150])
    put_raw(stack, batch[100:])
    put_raw(stack, batch[50:120])

    # WHEN the partition is compacted
    result = compactor(stack).compact(partition_of())

    # THEN compacted/ holds each change once, ordered by event_time then numeric sequence_number
    assert glob_lines(stack, partition_of()) == expected_lines(batch)
    assert (result.counts.rows_in, result.counts.rows_out, result.counts.duplicates_removed) == (
        420,
        300,
        120,
    )
    # AND the manifest records the inputs, the single output, the counts and when
    document = manifest(stack, partition_of())
    assert sorted(item["key"] for item in document["inputs"]) == sorted(stack.keys("raw/"))
    assert [output["key"] for output in document["outputs"]] == part_keys(stack, partition_of())
    assert (document["rows_in"], document["rows_out"], document["duplicates_removed"]) == (420, 300, 120)
    assert document["compacted_at"].endswith("Z")
    # AND raw/ is untouched
    assert len(stack.keys("raw/")) == 3


def test_numbers_keep_their_exact_text(stack: Stack) -> None:
    # GIVEN the sample stream event with 38-digit numbers, written to raw/ twice
    with open("events/stream_batch.json") as file:
        lines = [to_change_line(record) for record in json.load(file)["Records"]]
    by_partition: dict[Partition, list[ChangeLine]] = {}
    for line in lines:
        by_partition.setdefault(Partition.of_event_time(line.table, line.event_time), []).append(line)
    for group in by_partition.values():
        put_raw(stack, group)
        put_raw(stack, group[::-1][:1])

    # WHEN every partition is compacted
    for partition in by_partition:
        compactor(stack).compact(partition)

    # THEN the output lines are byte for byte the converted lines
    out = [line for partition in by_partition for line in glob_lines(stack, partition)]
    assert sorted(out) == sorted({line.line for line in lines})
    assert b"12345678901234567890123456789012345678" in b"".join(out)


def test_late_file_is_merged_by_the_next_run_and_the_old_generation_removed(stack: Stack) -> None:
    # GIVEN a compacted hour
    first = changes(2, 200)
    put_raw(stack, first)
    compactor(stack).compact(partition_of())
    old_parts = part_keys(stack, partition_of())

    # WHEN a late raw file arrives (new changes and a redelivery of old ones) and the next run covers it
    late = changes(3, 50, first=10**21)
    put_raw(stack, late + first[:20])
    result = compactor(stack).compact(partition_of())

    # THEN the hour holds every change exactly once, in order, in the new generation only
    assert result.status == "compacted"
    assert glob_lines(stack, partition_of()) == expected_lines(first, late)
    assert not set(old_parts) & set(part_keys(stack, partition_of()))
    assert len(manifest(stack, partition_of())["inputs"]) == 2


def test_rerun_with_unchanged_inputs_writes_nothing(stack: Stack) -> None:
    # GIVEN a compacted hour
    put_raw(stack, changes(4, 100))
    compactor(stack).compact(partition_of())

    # WHEN it is compacted again with the same raw/ inputs
    counting = CountingS3(stack.s3)
    result = compactor(stack, counting).compact(partition_of())

    # THEN no mutating S3 request was made
    assert result.status == "unchanged"
    assert counting.mutations == []


def test_parts_split_only_past_the_target_size(stack: Stack) -> None:
    # GIVEN an hour whose output (about 2.5 MB compressed, random filler) passes a 1 MiB target
    rng = random.Random(5)
    batch = changes(5, 1200)
    noisy = [
        line._replace(line=line.line[:-1] + b',"x":"' + rng.randbytes(1500).hex().encode() + b'"}')
        for line in batch
    ]
    put_raw(stack, noisy)

    # WHEN it is compacted with a 1 MiB target
    compactor(stack, target_part_bytes=1024 * 1024).compact(partition_of())

    # THEN there are several parts, all but the last at least the target, together in order
    keys = part_keys(stack, partition_of())
    sizes = [len(stack.read(key)) for key in keys]
    assert len(keys) >= 2
    assert all(size >= 1024 * 1024 for size in sizes[:-1])
    assert glob_lines(stack, partition_of()) == expected_lines(noisy)


def test_spilling_to_disk_with_a_tiny_memory_budget_gives_the_same_result(
    stack: Stack, tmp_path: Path
) -> None:
    # GIVEN an hour of redelivered files
    batch = changes(6, 400)
    for start in range(0, 400, 60):
        put_raw(stack, batch[start : start + 90])

    # WHEN it is compacted with a 64 KiB memory budget
    result = compactor(stack, memory_budget_bytes=64 * 1024, spill_dir=tmp_path).compact(partition_of())

    # THEN it spilled many runs, removed them, and the output is still exactly once and ordered
    assert result.spilled_runs >= 5
    assert glob_lines(stack, partition_of()) == expected_lines(batch)
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_raw_object_fails_the_partition_and_publishes_nothing(stack: Stack) -> None:
    # GIVEN an hour with a valid file and one whose line is not a change record
    put_raw(stack, changes(7, 30))
    bad_key = partition_of().prefix("raw") + "zzz-corrupt.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=bad_key, Body=gzip.compress(b'{"not": "a change"}\n'))

    # WHEN a run covers it
    summary = compactor(stack).run([partition_of()], trigger="manual")

    # THEN the partition is reported failed, nothing is in compacted/, and the summary raises
    assert [failure["partition"] for failure in summary.failed] == [partition_of().path]
    assert "line 1" in summary.failed[0]["error"]
    assert stack.keys("compacted/") == []
    with pytest.raises(CompactionError):
        summary.raise_for_failures()


@pytest.fixture
def fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every partition takes the fast path (with the full check in a second process)."""
    monkeypatch.setattr("changelake.compaction.compactor.FAST_PATH_MIN_BYTES", 0)


def _raw_lines(stack: Stack, name: str, lines: list[bytes]) -> None:
    """A raw/ object of the test hour holding exactly ``lines`` (any bytes)."""
    key = partition_of().prefix("raw") + name
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=gzip.compress(b"\n".join(lines) + b"\n"))


def _broken_tail(change: ChangeLine) -> bytes:
    """``change``'s line with its exact prefix kept and the rest no longer JSON."""
    return change.line.split(b',"keys":')[0] + b',"keys":{broken'


@pytest.mark.parametrize("memory_budget_bytes", [128 * 1024 * 1024, 4096])
@pytest.mark.usefixtures("fast_path")
def test_a_line_with_our_prefix_but_not_json_after_it_fails_the_partition_naming_the_line(
    stack: Stack, tmp_path: Path, memory_budget_bytes: int
) -> None:
    # GIVEN an hour with a valid file and a file whose third line has our exact prefix, then garbage
    good = changes(7, 30)
    bad = changes(8, 5, first=10**21)
    put_raw(stack, good)
    _raw_lines(stack, "zzz-tail.jsonl.gz", [c.line for c in bad[:2]] + [_broken_tail(bad[2])])

    # WHEN a run covers it (spilling or not)
    run = compactor(stack, memory_budget_bytes=memory_budget_bytes, spill_dir=tmp_path)
    summary = run.run([partition_of()], trigger="manual")

    # THEN the partition fails naming that file and line, exactly as the full parse reports it
    assert [failure["partition"] for failure in summary.failed] == [partition_of().path]
    assert "zzz-tail.jsonl.gz line 3: not a JSON change record" in summary.failed[0]["error"]
    assert stack.keys("compacted/") == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("memory_budget_bytes", [128 * 1024 * 1024, 4096])
@pytest.mark.usefixtures("fast_path")
def test_a_differing_copy_that_is_dropped_is_still_checked_in_full(
    stack: Stack, tmp_path: Path, memory_budget_bytes: int
) -> None:
    # GIVEN a valid file and a redelivery of one of its changes whose line is longer and not JSON
    # (so the valid copy, the smaller bytes, would be the one kept)
    good = changes(7, 30)
    put_raw(stack, good)
    broken = good[4].line[:-1] + b"~broken"
    assert broken > good[4].line
    _raw_lines(stack, "zzz-copy.jsonl.gz", [broken])

    # WHEN a run covers it
    run = compactor(stack, memory_budget_bytes=memory_budget_bytes, spill_dir=tmp_path)
    summary = run.run([partition_of()], trigger="manual")

    # THEN the partition fails on that line and nothing is published
    assert "zzz-copy.jsonl.gz line 1: not a JSON change record" in summary.failed[0]["error"]
    assert stack.keys("compacted/") == []


@pytest.mark.usefixtures("fast_path")
def test_a_routing_key_repeated_after_the_prefix_gets_the_full_parse_order(stack: Stack) -> None:
    # GIVEN a valid hour where one line (valid JSON) repeats "event_time" after our prefix: a JSON
    # reader takes the last value, so that line belongs at 12:59:59.999, not where its prefix says
    batch = changes(7, 30)
    twisted = batch[0].line[:-1] + b',"event_time":"2026-11-22T12:59:59.999Z"}'
    put_raw(stack, batch[1:])
    _raw_lines(stack, "zzz-twist.jsonl.gz", [twisted])

    # WHEN compacted
    result = compactor(stack).compact(partition_of())

    # THEN the output follows the full parse: the twisted line comes last, every change once
    assert result.status == "compacted"
    assert glob_lines(stack, partition_of()) == [*expected_lines(batch[1:]), twisted]


@pytest.mark.parametrize("memory_budget_bytes", [128 * 1024 * 1024, 4096])
def test_the_fast_path_gives_the_strict_paths_bytes_and_leaves_no_scratch_files(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory_budget_bytes: int
) -> None:
    # GIVEN an hour of valid raw files, one redelivered
    first, second = changes(7, 60), changes(8, 60, first=10**21)
    put_raw(stack, first)
    put_raw(stack, second)
    put_raw(stack, first[:20])
    checked: list[bool] = []
    real_verdict = FullCheck.verdict

    def verdict(self: FullCheck) -> bool:
        checked.append(real_verdict(self))
        return checked[-1]

    monkeypatch.setattr(FullCheck, "verdict", verdict)

    # WHEN compacted on the fast path
    monkeypatch.setattr("changelake.compaction.compactor.FAST_PATH_MIN_BYTES", 0)
    fast = compactor(stack, memory_budget_bytes=memory_budget_bytes, spill_dir=tmp_path).compact(
        partition_of()
    )
    fast_parts = {key: stack.read(key) for key in part_keys(stack, partition_of())}

    # THEN the full check ran once and agreed, and nothing is left in the scratch folder
    assert checked == [True]
    assert list(tmp_path.iterdir()) == []
    # AND rebuilt on the strict path (manifest removed, inputs equal), the parts are byte-identical
    stack.s3.delete_object(Bucket=stack.bucket, Key=compactor(stack).manifest_key(partition_of()))
    for key in fast_parts:
        stack.s3.delete_object(Bucket=stack.bucket, Key=key)
    monkeypatch.setattr("changelake.compaction.compactor.FAST_PATH_MIN_BYTES", 10**15)
    strict = compactor(stack, memory_budget_bytes=memory_budget_bytes, spill_dir=tmp_path).compact(
        partition_of()
    )
    assert {key: stack.read(key) for key in part_keys(stack, partition_of())} == fast_parts
    assert checked == [True]
    assert fast.counts == strict.counts
    assert fast.counts.duplicates_removed == 20


def _check_reader_views(stack: Stack, partition: Partition, old: list[bytes], new: list[bytes]) -> bool:
    """Readers see the old or the new set; returns whether globbing shows an overlap of both."""
    seen = glob_lines(stack, partition)
    counts = Counter(seen)
    assert set(seen) in (set(old), set(new))  # never a partial set, never a lost row
    document = manifest(stack, partition)
    live = set(part_keys(stack, partition))
    if all(output["key"] in live for output in document["outputs"]):
        by_manifest = [
            line
            for output in document["outputs"]
            for line in gzip.decompress(stack.read(output["key"])).splitlines()
        ]
        assert by_manifest in (old, new)
    return max(counts.values()) > 1


@pytest.mark.parametrize("lose_answer", [False, True], ids=["refused", "answer lost"])
def test_a_failure_at_each_s3_write_leaves_compacted_whole_and_the_next_run_finishes(
    stack: Stack, lose_answer: bool
) -> None:
    # (answer lost after the manifest PUT: the run aborts the uploads that manifest names; the next
    # run finds them gone (NoSuchUpload) and rebuilds. moto answered that with a 500 until
    # changelake_local.moto_server.behave_like_s3, and the partition never finished.)
    fail_at = 1
    while True:
        # GIVEN a compacted hour (its own table per call index) and a late file
        table = f"t{fail_at:03d}"
        partition = partition_of(table)
        first = changes(10, 120, table=table)
        put_raw(stack, first[:80])
        put_raw(stack, first[40:])
        compactor(stack).compact(partition)
        late = changes(11, 40, table=table, first=10**21)
        put_raw(stack, late)
        old, new = expected_lines(first), expected_lines(first, late)

        # WHEN the next run's fail_at-th mutating S3 request fails (refused, or done and its answer lost)
        failing = CountingS3(stack.s3, fail_at=fail_at, lose_answer=lose_answer)
        summary = compactor(stack, failing, target_part_bytes=5 * 1024 * 1024).run([partition], trigger="t")
        if failing.failed_operation is None:
            break  # past the last write of a run: every call index was covered

        # THEN the run reports the partition failed, readers see the old or the new set, and an overlap
        # of the two is only possible once the manifest committed (during promotion)
        assert [failure["partition"] for failure in summary.failed] == [partition.path]
        done = failing.mutations if lose_answer else failing.mutations[:-1]
        committed = "put_object" in done  # the manifest PUT succeeded (before, or at, the failure)
        overlap = _check_reader_views(stack, partition, old, new)
        assert committed or not overlap
        # AND the next run finishes it: exactly once, ordered, old generation gone, and a rerun is a no-op
        compactor(stack).compact(partition)
        assert glob_lines(stack, partition) == new
        assert len(part_keys(stack, partition)) == 1
        again = CountingS3(stack.s3)
        compactor(stack, again).compact(partition)
        assert again.mutations == []
        fail_at += 1
    # (create, upload part, put manifest, complete, delete old part: at least five writes were covered)
    assert fail_at > 5


def test_two_concurrent_runs_leave_one_correct_result(stack: Stack) -> None:
    # GIVEN a compacted hour and a late file
    first = changes(20, 150)
    put_raw(stack, first)
    compactor(stack).compact(partition_of())
    late = changes(21, 30, first=10**21)
    put_raw(stack, late)

    # WHEN run B runs to completion while run A is about to commit its manifest
    def run_b(_: dict[str, Any]) -> None:
        compactor(stack).compact(partition_of())

    a_client = CountingS3(stack.s3, hook=("put_object", run_b))
    result = compactor(stack, a_client).compact(partition_of())

    # THEN A's conditional commit lost, A aborted its own upload and found the partition done
    assert result.status == "unchanged"
    assert a_client.calls.get("abort_multipart_upload") == 1
    # AND the partition holds exactly one correct generation
    assert glob_lines(stack, partition_of()) == expected_lines(first, late)
    assert len(part_keys(stack, partition_of())) == 1
    uploads = stack.s3.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", [])
    assert uploads == []


def test_concurrent_run_with_newer_inputs_wins_over_a_stale_one(stack: Stack) -> None:
    # GIVEN an hour with one raw file
    first = changes(22, 100)
    put_raw(stack, first)
    late = changes(23, 10, first=10**21)

    # WHEN run A reads its inputs, then a late file arrives and run B compacts everything before A commits
    def late_then_b(_: dict[str, Any]) -> None:
        put_raw(stack, late)
        compactor(stack).compact(partition_of())

    a_client = CountingS3(stack.s3, hook=("put_object", late_then_b))
    compactor(stack, a_client).compact(partition_of())

    # THEN A lost its commit, re-evaluated and left B's (complete) result
    assert glob_lines(stack, partition_of()) == expected_lines(first, late)
    assert manifest(stack, partition_of())["rows_out"] == 110


def _is_step(operation: str, kwargs: dict[str, Any]) -> bool:
    """A request the other run can observe (reading raw contents and uploading open parts are not)."""
    if operation in ("create_multipart_upload", "upload_part", "abort_multipart_upload"):
        return False
    return not (operation == "get_object" and str(kwargs["Key"]).startswith("raw/"))


@dataclass
class Overlap:
    """What one interleaving of two runs did (see ``_overlapping_runs``)."""

    turns: Turns
    a_summary: CompactionSummary
    b_summary: CompactionSummary
    views: list[list[bytes]]


def _overlapping_runs(
    stack: Stack, partition: Partition, batches: list[list[ChangeLine]], a_steps: int, b_steps: int | None
) -> Overlap:
    """Run A (raw: batches 0 and 1) makes ``a_steps`` steps; then run B writes batch 2 to raw/ and
    makes ``b_steps`` steps (None: to its end); then A runs to its end, then B. At each switch a
    globbing reader's view is recorded."""
    views: list[list[bytes]] = []
    turns = Turns(
        [Turn("A", a_steps), Turn("B", b_steps), Turn("A", None), Turn("B", None)],
        on_switch=lambda: views.append(glob_lines(stack, partition)),
    )
    a_client = TurnTakingS3(stack.s3, "A", turns, _is_step)
    b_client = TurnTakingS3(stack.s3, "B", turns, _is_step)

    def run_b() -> CompactionSummary:
        put_raw(stack, batches[2], b_client)  # B's first step: the late raw file
        return compactor(stack, b_client).run([partition], trigger="B")

    a = RunThread("A", turns, lambda: compactor(stack, a_client).run([partition], trigger="A")).start()
    b = RunThread("B", turns, run_b).start()
    return Overlap(turns, a.join(), b.join(), views)


def _three_batches(table: str) -> list[list[ChangeLine]]:
    """An hour's first raw file and two late ones."""
    return [
        changes(60, 12, table=table),
        *(changes(61 + n, 6, table=table, first=n * 10**21) for n in (1, 2)),
    ]


def _interleave(stack: Stack, batches: list[list[ChangeLine]], a_steps: int, b_steps: int | None) -> Overlap:
    """One interleaving, checked: both runs succeed, the folder ends with exactly the current
    manifest's parts (each change of raw/ once, in order), and no reader ever missed an old row."""
    # GIVEN an hour compacted from one raw file (the old generation), then a late raw file
    partition = Partition.of_event_time(batches[0][0].table, batches[0][0].event_time)
    put_raw(stack, batches[0])
    compactor(stack).compact(partition)
    put_raw(stack, batches[1])

    # WHEN run A covers it, stopping after a_steps steps while a second late file arrives and run
    # B makes b_steps steps (None: all), then A runs to its end, then B
    overlap = _overlapping_runs(stack, partition, batches, a_steps, b_steps)

    # THEN both runs succeeded, and the folder holds exactly the current manifest's parts:
    # every change of raw/ exactly once, in order
    assert overlap.a_summary.failed == overlap.b_summary.failed == []
    document = manifest(stack, partition)
    assert part_keys(stack, partition) == sorted(output["key"] for output in document["outputs"])
    assert glob_lines(stack, partition) == expected_lines(*batches)
    # AND a reader globbing the folder never missed a row of the old generation meanwhile
    old = set(expected_lines(batches[0]))
    assert all(old <= set(view) for view in overlap.views)
    return overlap


@pytest.mark.parametrize("paused_before", ["put_object", "complete_multipart_upload", "delete_object"])
def test_a_run_overtaken_by_a_newer_run_at_each_protocol_step_leaves_exactly_the_current_manifests_parts(
    stack: Stack, paused_before: str
) -> None:
    # (GIVEN, WHEN, THEN in _interleave: run B runs wholly inside a pause of run A, before A's
    # commit, between its commit and completion, between its completion and deletion)
    in_memory = Stack(BUCKET, "", "", "", InMemoryS3(), None)
    probe = _interleave(in_memory, _three_batches("overtaken"), 1000, None)  # A's steps when alone
    a_steps = probe.turns.made("A").index(paused_before)
    overlap = _interleave(stack, _three_batches("overtaken"), a_steps, None)
    assert overlap.turns.paused("A") == [paused_before]


def test_two_overlapping_runs_leave_exactly_the_current_manifests_parts_in_every_interleaving() -> None:
    # (GIVEN, WHEN, THEN in _interleave, for every schedule "A makes i steps, B makes j steps, A runs
    # to its end, B runs to its end", on S3 held in memory: a moto server would take minutes)
    batches = _three_batches("orders")
    a_steps, b_steps, schedules = 0, 1, 0
    while True:
        overlap = _interleave(Stack(BUCKET, "", "", "", InMemoryS3(), None), batches, a_steps, b_steps)
        schedules += 1
        if overlap.turns.paused("B"):
            b_steps += 1  # B stopped before its end: next, let it make one step more
        elif overlap.turns.paused("A"):
            a_steps, b_steps = a_steps + 1, 1  # B ran to its end inside A's pause: pause A later
        else:
            break  # A ended before its pause: every step of A was covered
    # (every step of A was a pause point: A was paused before its commit, between commit and
    # completion, and between completion and deletion, among others)
    assert schedules > 50


def test_deadline_hands_remaining_partitions_to_a_new_invocation(stack: Stack) -> None:
    # GIVEN three hours of raw data and a context whose time runs short after the first partition
    for hour in (12, 13, 14):
        batch = changes(30 + hour, 20, first=10**20 + hour * 1000)
        lines = [line._replace(event_time=line.event_time.replace("T12", f"T{hour}")) for line in batch]
        lines = [line._replace(line=line.line.replace(b"T12:", f"T{hour}:".encode())) for line in lines]
        put_raw(stack, lines)
    context = FakeLambdaContext(remaining_ms=600_000)
    invocations: list[dict[str, Any]] = []

    class FakeLambda:
        def invoke(self, **kwargs: Any) -> dict[str, Any]:
            invocations.append(kwargs)
            return {"StatusCode": 202}

    service = CompactionService(
        compactor(stack), reserve_seconds=300, invoker=self_invoker(LambdaInvoker(client=FakeLambda()))
    )
    original = service.compactor.compact

    def compact_and_age(partition: Partition, **options: Any) -> Any:
        result = original(partition, **options)
        context.remaining_ms = 200_000
        return result

    service.compactor.compact = compact_and_age  # type: ignore[method-assign]

    # WHEN the day is compacted by hand
    summary = service.handle({"table": "orders", "dt": "2026-11-22"}, context)

    # THEN one hour was done and the two others were handed on in one asynchronous invocation
    assert summary.compacted == ["orders/dt=2026-11-22/hour=12"]
    assert summary.handed_off == ["orders/dt=2026-11-22/hour=13", "orders/dt=2026-11-22/hour=14"]
    assert summary.handoff_invocations == 1
    (call,) = invocations
    assert call["InvocationType"] == "Event"
    assert call["FunctionName"] == context.function_name
    payload = json.loads(call["Payload"])
    # AND the hand-off event, run with enough time, finishes the rest
    service.compactor.compact = original  # type: ignore[method-assign]
    context.remaining_ms = 900_000
    rest = service.handle(payload, context)
    assert rest.compacted == summary.handed_off
    assert len(stack.keys("compacted/")) == 6  # a part and a manifest per hour


def _handler_env(stack: Stack) -> dict[str, str]:
    return {**stack.environment, "LOOKBACK_DAYS": "1", "COMPACTION_TARGET_BYTES": str(5 * 1024 * 1024)}


def test_manual_event_through_the_handler_returns_the_summary(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN an hour with duplicates in raw/
    batch = changes(40, 60)
    put_raw(stack, batch)
    put_raw(stack, batch[:25])
    app = load_handler("compaction", _handler_env(stack))

    # WHEN the sample manual event is invoked
    with open("events/compaction_manual.json") as file:
        event = json.load(file)
    summary = app.lambda_handler(event, lambda_context)

    # THEN the summary gives partitions, rows in/out and duplicates removed
    assert summary["partitions"] == 1
    assert (summary["rows_in"], summary["rows_out"], summary["duplicates_removed"]) == (85, 60, 25)
    assert summary["compacted"] == ["orders/dt=2026-11-22/hour=12"]


def test_scheduled_event_compacts_yesterday_and_the_lookback_window_of_every_table(
    stack: Stack, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN raw hours on 2026-11-20, -21 and -22 for two tables, and "today" 2026-11-23
    for table in ("orders", "users"):
        for day in (20, 21, 22):
            batch = changes(day, 5, table=table, first=10**20 + day * 100)
            lines = [
                line._replace(line=line.line.replace(b'"2026-11-22T', f'"2026-11-{day}T'.encode()))
                for line in batch
            ]
            lines = [line._replace(event_time=line.event_time.replace("-22T", f"-{day}T")) for line in lines]
            put_raw(stack, lines)
    service = CompactionService(
        compactor(stack), lookback_days=1, clock=lambda: datetime(2026, 11, 23, 0, 15, tzinfo=UTC)
    )

    # WHEN the scheduled event arrives
    with open("events/compaction_scheduled.json") as file:
        summary = service.handle(json.load(file), lambda_context)

    # THEN yesterday (22nd) and one look-back day (21st) were compacted for both tables, not the 20th
    assert sorted(summary.compacted) == [
        f"{table}/dt=2026-11-{day}/hour=12" for table in ("orders", "users") for day in (21, 22)
    ]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"table": "../x", "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-02-30"}, "dt"),
        ({"table": "orders", "dt": "22.11.2026"}, "dt"),
        ({"table": "orders", "dt": "2026-11-22", "hour": "24"}, "hour"),
        ({"table": "orders", "dt": "2026-11-22", "hour": 5}, "hour"),
        ({"table": ["orders"], "dt": "2026-11-22"}, "table"),
        ({"table": "orders", "dt": "2026-11-22", "force": True}, "force"),
        ({"dt": "2026-11-22"}, "table"),
        ({"handoff": "changelake.compaction", "partitions": ["../x/dt=2026-11-22/hour=01"]}, "partitions"),
    ],
)
def test_malformed_manual_events_are_refused_and_nothing_is_written(
    stack: Stack, load_handler: HandlerLoader, lambda_context: FakeLambdaContext, event: Any, field: str
) -> None:
    # GIVEN raw data that a valid event would compact
    put_raw(stack, changes(50, 10))
    app = load_handler("compaction", _handler_env(stack))

    # WHEN a malformed event is invoked
    with pytest.raises(InvalidEventError) as raised:
        app.lambda_handler(event, lambda_context)

    # THEN the error names the field and compacted/ stays empty
    assert raised.value.field.split(".")[0] == field
    assert stack.keys("compacted/") == []


def test_manual_event_model_accepts_a_valid_event() -> None:
    event = ManualEvent.model_validate({"table": "orders", "dt": "2026-11-22", "hour": "07"})
    assert (event.table, event.dt, event.hour) == ("orders", "2026-11-22", "07")


@pytest.mark.parametrize("fast_path_min_bytes", [0, 10**15], ids=["fast-path", "strict-path"])
def test_raw_lines_with_unescaped_line_separators_compact_to_one_line_per_record(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_path_min_bytes: int
) -> None:
    # GIVEN an hour whose raw/ file was written before change lines escaped U+2028/U+2029: every
    # line holds both raw inside a string (in its event_id for one of them)
    legacy = []
    for index, change in enumerate(changes(9, 30)):
        line = change.line.replace(b'"keys":{', '"keys":{"note":"a\u2028b\u2029c",'.encode(), 1)
        if index == 0:
            line = line.replace(change.event_id.encode(), f"{change.event_id}\u2028x".encode(), 1)
        legacy.append(parse_change_line(line))
    put_raw(stack, legacy)

    # WHEN it is compacted (on the fast path, and on the strict path)
    monkeypatch.setattr("changelake.compaction.compactor.FAST_PATH_MIN_BYTES", fast_path_min_bytes)
    result = compactor(stack, spill_dir=tmp_path).compact(partition_of())

    # THEN every compacted line is one line to str.splitlines, with the same values as before
    text = b"".join(gzip.decompress(stack.read(key)) for key in part_keys(stack, partition_of())).decode()
    assert "\u2028" not in text
    assert "\u2029" not in text
    documents = [json.loads(line) for line in text.splitlines()]
    assert len(documents) == result.counts.rows_out == 30
    assert sorted(document["event_id"] for document in documents) == sorted(c.event_id for c in legacy)
    assert {document["keys"]["note"] for document in documents} == {"a\u2028b\u2029c"}


def test_a_failed_partition_is_retried_by_later_runs_past_the_look_back_until_it_succeeds(
    stack: Stack, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two hours of raw/ (2026-11-22), and S3 refusing every write to compacted/ that night
    put_raw(stack, changes(11, 10))
    other = Partition("orders", date(2026, 11, 22), 13)
    put_raw(
        stack, [to_change_line(r) for r in change_batch(random.Random(12), 5, start=other.start.timestamp())]
    )
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}}
    night = datetime(2026, 11, 23, 0, 15, tzinfo=UTC)
    refusing = wired_service(
        stack, FailingPutS3(stack.s3, "compacted/"), lookback_days=0, clock=lambda: night
    )

    # WHEN that night's scheduled run fails both hours
    failed = refusing.handle(scheduled, lambda_context)

    # THEN each failed hour has a retry marker of its own, and the run still reports the failure
    assert [failure["partition"] for failure in failed.failed] == [partition_of().path, other.path]
    markers = stack.keys("late/compaction/")
    assert [key.rsplit("/", 1)[0] for key in markers] == [
        f"late/compaction/{partition_of().path}",
        f"late/compaction/{other.path}",
    ]
    with pytest.raises(CompactionError):
        failed.raise_for_failures()
    # AND a scheduled run ten days later, far outside its look-back window, compacts both and
    # clears their markers
    later = wired_service(stack, lookback_days=0, clock=lambda: night + timedelta(days=10))
    retried = later.handle(scheduled, lambda_context)
    assert (sorted(retried.compacted), retried.failed) == ([partition_of().path, other.path], [])
    assert stack.keys("late/") == []


def test_a_partition_that_succeeds_leaves_no_marker(stack: Stack) -> None:
    # GIVEN an hour of raw/ WHEN it compacts THEN no retry marker is written
    put_raw(stack, changes(13, 10))
    summary = wired_service(stack).handle({"table": "orders", "dt": "2026-11-22"}, FakeLambdaContext())
    assert (summary.compacted, summary.failed) == ([partition_of().path], [])
    assert stack.keys("late/") == []


def test_the_handler_builds_with_the_settings_limits_and_injects_the_late_markers(
    stack: Stack, load_handler: HandlerLoader
) -> None:
    # GIVEN the function's settings with a part size and a memory budget of their own
    environment = {**_handler_env(stack), "COMPACTION_MEMORY_BUDGET_BYTES": str(3 * 1024 * 1024)}

    # WHEN the handler is loaded
    app = load_handler("compaction", environment)

    # THEN its compactor takes the settings' build limits as one value
    assert app.service.compactor.limits == build_limits(app.settings)
    assert app.service.compactor.limits.memory_budget_bytes == 3 * 1024 * 1024
    # AND the late markers are the bucket's, injected by the handler
    assert isinstance(app.service.markers, LateMarkers)
    assert app.service.markers.store.bucket == stack.bucket

"""The pure parts of the changelake command: output modes, what needs attention, run records."""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from changelake.runs import RunRecord, success_metric_name
from changelake.settings import AggregatorSettings, CompactionSettings, SnapshotSettings
from changelake_cli.errors import UsageError
from changelake_cli.invoke import LambdaInvoker, redrive_needs_attention
from changelake_cli.lake import DayReport, LakePrefixes, is_data, lake_prefixes
from changelake_cli.output import Cell, Output, Styled, human_age, human_bytes, jsonable
from changelake_cli.render import hours_strip
from changelake_cli.services import QueueDepth
from changelake_cli.stack import Aws, Target, sam_defaults
from changelake_cli.status import (
    AlarmState,
    Settings,
    Status,
    TableStatus,
    fan_out_folder,
    needs_attention,
    partition_of,
    pieces_built,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def record(result: str = "succeeded") -> RunRecord:
    return RunRecord(
        kind="compaction",
        request_id="r-1",
        started_at=datetime(2026, 11, 30, 0, 15, tzinfo=UTC),
        finished_at=datetime(2026, 11, 30, 0, 16, 30, tzinfo=UTC),
        trigger="scheduled",
        result=result,  # type: ignore[arg-type]
        tables=("orders",),
        rows=12,
        bytes_out=3400,
        summary={"partitions": 2},
    )


def status_of(
    *,
    days: list[DayReport] | None = None,
    queues: list[QueueDepth] | None = None,
    alarms: list[AlarmState] | None = None,
    last: RunRecord | None = None,
    lost: list[str] | None = None,
) -> Status:
    settings = Settings("s", "us-east-1", None, "CREATE_COMPLETE", "b", "t", {}, {}, {}, ["orders"])
    return Status(
        generated_at=NOW,
        settings=settings,
        tables=[TableStatus("orders", None, None, days or [])],
        queues=queues or [],
        alarms=alarms or [],
        last_runs={"compaction": last},
        lost_reports=lost or [],
        attention=[],
    )


def test_a_run_record_round_trips_through_its_json() -> None:
    original = record()
    again = RunRecord.from_json(original.to_json())
    assert again == original
    assert json.loads(original.to_json())["seconds"] == 90.0
    assert original.key == "_runs/compaction/dt=2026-11-30/r-1.json"


@pytest.mark.parametrize("body", [b"[]", b'{"kind": "backup"}', b'{"kind": "redrive"}', b"not json"])
def test_what_is_not_a_run_record_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError, match=r"not a changelake run record|Expecting value"):
        RunRecord.from_json(body)


def test_success_metric_names() -> None:
    assert [success_metric_name(k) for k in ("compaction", "snapshot", "redrive")] == [
        "CompactionSucceeded",
        "SnapshotSucceeded",
        "RedriveSucceeded",
    ]


def test_a_quiet_stack_needs_nothing() -> None:
    day = DayReport("orders", date(2026, 11, 29), hours={"09": "pending"})  # yesterday: the nightly run's job
    assert needs_attention(status_of(days=[day], last=record()), 2, lambda: NOW) == []


def test_what_needs_a_human() -> None:
    old = DayReport("orders", date(2026, 11, 26), hours={"09": "stale", "10": "compacted"})
    inside = DayReport("orders", date(2026, 11, 27), hours={"09": "pending"})  # inside the 2-day window
    status = status_of(
        days=[old, inside],
        queues=[
            QueueDepth("ChangeDLQ", "dlq", 2, 1, None),
            QueueDepth("StreamFailureQueue", "sf", 1, 0, None),
            QueueDepth("AsyncFailureQueue", "af", 0, 1, None),
            QueueDepth("ChangeQueue", "q", 500, 20, 3.0),
        ],
        alarms=[AlarmState("a1", "ALARM", "too old", NOW), AlarmState("a2", "OK", "", NOW)],
        last=record("failed"),
        lost=["lost/orders/dt=2026-11-29/x.json"],
    )
    problems = needs_attention(status, 2, lambda: NOW)
    assert problems == [
        "ChangeDLQ holds 3 message(s): fix the cause, then `changelake redrive`",
        "StreamFailureQueue holds 1 failed stream range(s): `changelake redrive` within 24 hours",
        "AsyncFailureQueue holds 1 failed asynchronous invocation(s): fix the cause, "
        "then `changelake redrive`",
        "1 lost stream range report(s) under lost/ (see docs/operations.md)",
        "alarm a1 is in ALARM: too old",
        "the last compaction run failed: see changelake history",
        "orders 2026-11-26: hour(s) 09 not compacted, past the look-back window of 2 day(s): "
        "`changelake compact --table orders --dt 2026-11-26`",
    ]


def test_an_old_hour_a_late_marker_queues_for_tonight_needs_nobody() -> None:
    # GIVEN a stale hour past the window that the aggregator marked as late data
    old = DayReport("orders", date(2026, 11, 20), hours={"09": "stale", "10": "pending"})
    status = status_of(days=[old], last=record())
    status.queued_by_late_markers.append("orders/dt=2026-11-20/hour=09")
    # THEN only the unmarked hour needs a human
    (problem,) = needs_attention(status, 2, lambda: NOW)
    assert problem.startswith("orders 2026-11-20: hour(s) 10 not compacted")


def test_hours_strip_marks_each_hour() -> None:
    day = DayReport("orders", date(2026, 11, 30), hours={"00": "compacted", "01": "stale", "23": "pending"})
    assert hours_strip(day) == "Cs" + "." * 21 + "p"


@pytest.mark.parametrize(
    ("result", "attention"),
    [
        ({"moved": 3, "failed": 0}, False),
        ({"failed": 1}, True),
        ({"left_too_many_redrives": 2}, True),
        ({"stream_failures": {"ranges_lost": 1}}, True),
        ({"stream_failures": None}, False),
        (None, False),
    ],
)
def test_a_redrive_that_left_work_needs_attention(result: object, attention: bool) -> None:
    assert redrive_needs_attention(result) is attention


def test_plain_output_off_a_terminal_and_colour_on_one() -> None:
    # GIVEN the same table printed to a pipe, to a terminal, and to a terminal with NO_COLOR
    rows: list[list[Cell]] = [["orders", Styled("failed", "bad")]]
    pipe, tty, no_color = io.StringIO(), Terminal(), Terminal()
    Output(out=pipe, environ={}).table("Runs", ["table", "result"], rows)
    Output(out=tty, environ={}).table("Runs", ["table", "result"], rows)
    Output(out=no_color, environ={"NO_COLOR": "1"}).table("Runs", ["table", "result"], rows)
    # THEN the pipe gets plain aligned columns, the terminal a boxed table in colour, NO_COLOR no colour
    assert pipe.getvalue() == "Runs\ntable   result\norders  failed\n\n"
    red = "31m"
    assert red in tty.getvalue()
    assert "┃" in tty.getvalue()
    assert red not in no_color.getvalue()
    assert "┃" in no_color.getvalue()


def test_json_mode_never_colours_even_on_a_terminal() -> None:
    out = Terminal()
    output = Output(out=out, as_json=True, environ={})
    output.json({"when": NOW, "day": date(2026, 11, 30), "path": Path("x")})
    assert json.loads(out.getvalue()) == {
        "when": "2026-11-30T12:00:00.000Z",
        "day": "2026-11-30",
        "path": "x",
    }
    assert output.color is False


def test_jsonable_keeps_a_run_records_own_document() -> None:
    assert jsonable(record())["seconds"] == 90.0


def test_jsonable_adds_no_zone_to_a_time_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a machine in New York  WHEN a time without a zone becomes JSON
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        naive = datetime(2026, 11, 22, 12, 0, 0, 123456)  # noqa: DTZ001 - a time without a zone is the case
        printed = jsonable([naive, datetime(2026, 11, 22, 12, tzinfo=UTC)])
    finally:
        monkeypatch.undo()
        time.tzset()
    # THEN it is the time given, not shifted by the machine's zone; a time with a zone is in UTC
    assert printed == ["2026-11-22T12:00:00.123456", "2026-11-22T12:00:00.000Z"]


def test_json_output_is_always_valid_json() -> None:
    # GIVEN numbers JSON has no literal for, and bytes
    out = io.StringIO()
    Output(out=out, as_json=True, environ={}).json(
        {"numbers": [float("nan"), float("inf"), float("-inf"), 1.5], "bytes": b"\x00\xff"}
    )

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    # THEN they print as strings a JSON parser accepts
    assert json.loads(out.getvalue(), parse_constant=refuse) == {
        "numbers": ["NaN", "Infinity", "-Infinity", 1.5],
        "bytes": "AP8=",
    }


def test_manifests_and_what_is_under_a_partitions_underscore_folders_are_not_data() -> None:
    # GIVEN a snapshot day's files (of a table whose own name starts with "_") and a compacted hour's
    day = "snapshot/_orders/dt=2026-11-22/"
    hour = "compacted/orders/dt=2026-11-22/hour=01/"
    # WHEN each is sorted THEN the parts are data; manifests and the removed keys' files are not
    assert is_data(day + "part-g-00000.jsonl.gz", day)
    assert not is_data(day + "_manifest.json", day)
    assert not is_data(day + "_removed/part-g-00000.jsonl.gz", day)
    assert is_data(hour + "part-g-00000.jsonl.gz")
    assert not is_data(hour + "_manifest.json")


def test_human_units() -> None:
    assert [human_bytes(n) for n in (None, 0, 1536, 5 * 1024**3)] == ["-", "0 B", "1.5 KiB", "5.0 GiB"]
    assert [human_age(s) for s in (None, 5, 125, 7300, 90000)] == ["-", "5s", "2m 5s", "2h 1m", "1d 1h"]


def test_a_local_endpoint_is_one_on_this_machine() -> None:
    assert Target("s", endpoint="http://127.0.0.1:4566").is_local
    assert Target("s", endpoint="http://localhost:4566").is_local
    assert not Target("s", endpoint="https://cloudformation.us-east-1.amazonaws.com").is_local
    assert not Target("s").is_local


def test_defaults_come_from_samconfig(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[prod.global.parameters]\nstack_name = "cl-prod"\n'
        '[prod.deploy.parameters]\nregion = "eu-west-1"\n'
    )
    assert sam_defaults("prod", (tmp_path,)) == sam_defaults("prod", (tmp_path, Path("/nonexistent")))
    defaults = sam_defaults("prod", (tmp_path,))
    assert (defaults.stack, defaults.region) == ("cl-prod", "eu-west-1")
    assert sam_defaults("prod", (tmp_path / "none",)).stack is None


class FakeLambda:
    """Lambda's Invoke as boto3 returns it: a streaming payload, FunctionError on a function error."""

    def __init__(self, payload: object, function_error: str | None = None) -> None:
        self.payload, self.function_error = payload, function_error
        self.calls: list[dict[str, object]] = []

    def invoke(self, **kwargs: object) -> dict[str, object]:
        self.calls.append(kwargs)
        response: dict[str, object] = {"Payload": io.BytesIO(json.dumps(self.payload).encode())}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


def test_lambda_invoker_returns_the_answer_of_a_synchronous_invocation() -> None:
    fake = FakeLambda({"rows_out": 3})
    answer, error = LambdaInvoker(client=fake)(
        "CompactionFunction", "cl-compaction", {"table": "t", "dt": "d"}
    )
    assert (answer, error) == ({"rows_out": 3}, None)
    assert fake.calls == [
        {
            "FunctionName": "cl-compaction",
            "InvocationType": "RequestResponse",
            "Payload": b'{"table": "t", "dt": "d"}',
        }
    ]


def test_lambda_invoker_reports_a_function_error() -> None:
    fake = FakeLambda({"errorType": "InvalidEventError", "errorMessage": "dt: bad"}, "Unhandled")
    assert LambdaInvoker(client=fake)("X", "x", {}) == (None, "InvalidEventError: dt: bad")


def test_synchronous_invocations_are_never_retried_by_botocore() -> None:
    aws = Aws(Target("s", region="us-east-1", endpoint="http://127.0.0.1:1"))
    assert aws.client("lambda", invoke=True).meta.config.retries["total_max_attempts"] == 1
    assert aws.client("lambda").meta.config.retries["total_max_attempts"] == 4  # 3 retries


def test_the_lake_prefixes_are_the_ones_the_functions_are_configured_with() -> None:
    # GIVEN a stack whose writers write under prefixes of their own, and one without a snapshot
    environments = {
        "AggregatorFunction": {"BUCKET_NAME": "b", "RAW_PREFIX": "changes-raw"},
        "CompactionFunction": {"BUCKET_NAME": "b", "RAW_PREFIX": "ignored", "COMPACTED_PREFIX": "hours"},
        "DlqRedriveFunction": {"BUCKET_NAME": "b", "LOST_PREFIX": "gone"},
    }
    # WHEN the command works the prefixes out
    prefixes = lake_prefixes(environments.get)
    # THEN each layer's is its writer's, and a layer without a writer has the settings' default
    assert prefixes == LakePrefixes(raw="changes-raw", compacted="hours", snapshot="snapshot", lost="gone")
    assert prefixes.layers == ("changes-raw", "hours", "snapshot")
    assert prefixes.of("compacted") == "hours"


def test_without_prefix_variables_the_settings_defaults_apply() -> None:
    # GIVEN functions whose environment names no prefix
    prefixes = lake_prefixes(lambda logical_id: {"BUCKET_NAME": "b"})
    # WHEN compared with the functions' own settings THEN the prefixes are their defaults
    assert prefixes.raw == AggregatorSettings.from_environ({"BUCKET_NAME": "bucket"}).raw_prefix
    assert prefixes.compacted == CompactionSettings.from_environ({"BUCKET_NAME": "bucket"}).compacted_prefix
    assert prefixes.snapshot == SnapshotSettings.from_environ({"BUCKET_NAME": "bucket"}).snapshot_prefix
    assert prefixes == LakePrefixes()


def test_a_prefix_the_function_would_refuse_is_named() -> None:
    # GIVEN a compaction function configured with a prefix that leaves its folder
    environments = {"CompactionFunction": {"COMPACTED_PREFIX": "../elsewhere"}}
    # WHEN the command works the prefixes out THEN it says which function and variable, exit 2
    with pytest.raises(UsageError, match=r"CompactionFunction has COMPACTED_PREFIX='\.\./elsewhere'"):
        lake_prefixes(environments.get)


class ListedStore:
    """A store whose listing holds ``keys`` (what pieces_built reads: names only)."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_objects(self, prefix: str) -> list[Listed]:
        return [Listed(key) for key in self.keys if key.startswith(prefix)]


@dataclass
class Listed:
    key: str


def test_pieces_built_counts_the_records_of_one_generation_in_that_count() -> None:
    # GIVEN a day's _pieces/: 2 of 4 of generation g2, 3 of 4 of an older one, one in another count
    folder = "snapshot/orders/dt=2026-11-27/"
    keys = [
        f"{folder}_pieces/g2/0000-of-0004.json",
        f"{folder}_pieces/g2/0003-of-0004.json",
        *(f"{folder}_pieces/g1/000{k}-of-0004.json" for k in range(3)),
        f"{folder}_pieces/g3/0001-of-0008.json",
        f"{folder}part-00000.json.gz",
    ]
    # WHEN the pieces of 4 and of 8 are counted
    # THEN the most of one generation counts (records of different generations never add up)
    assert pieces_built(ListedStore(keys), folder, 4) == 3  # type: ignore[arg-type]
    assert pieces_built(ListedStore(keys), folder, 8) == 1  # type: ignore[arg-type]
    assert pieces_built(ListedStore([]), folder, 4) == 0  # type: ignore[arg-type]


def test_the_folder_a_plan_builds_is_a_snapshot_day_or_a_compacted_hour() -> None:
    prefixes = LakePrefixes(compacted="c", snapshot="s")
    assert fan_out_folder(prefixes, {"table": "orders", "dt": "2026-11-27"}) == "s/orders/dt=2026-11-27/"
    hour = {"table": "orders", "dt": "2026-11-27", "hour": "7"}
    assert fan_out_folder(prefixes, hour) == "c/orders/dt=2026-11-27/hour=07/"
    assert partition_of(hour) == "dt=2026-11-27/hour=07"

"""The ``changelake`` command against the local stack: every command, as a table and as --json,
and bad input with its documented message and exit code."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from changelake_cli.errors import Exit
from changelake_local.deploy import alarm_name
from tests.integration.conftest import (
    ROWS_PER_HOUR,
    LocalStack,
    Ran,
    days_ago,
    held_fan_out,
    run_cli,
    this_hour,
)

pytestmark = pytest.mark.integration

TABLE = "orders"
#: A second table (sorted after the first): two recent hours of 10 and 40 changes.
OTHER = "payments"


@pytest.fixture(scope="module")
def recent_hour() -> datetime:
    """The hour before this one, taken once: a run that crosses an hour boundary still finds it."""
    return this_hour() - timedelta(hours=1)


@pytest.fixture(scope="module")
def lake(local_stack: LocalStack, recent_hour: datetime) -> LocalStack:
    """'orders' with an hour today and an hour four days ago (past the 2-day look-back window);
    'payments' with the two hours before this one, within the window."""
    local_stack.put_hour(TABLE, recent_hour, seed=1)
    local_stack.put_hour(TABLE, days_ago(4), seed=2)
    local_stack.put_hour(OTHER, recent_hour - timedelta(hours=1), seed=3, rows=10)
    local_stack.put_hour(OTHER, recent_hour, seed=4, rows=40)
    return local_stack


def cli(stack: LocalStack, *argv: str) -> Ran:
    return run_cli("--endpoint", stack.endpoint, *argv)


def test_status_shows_the_lake_and_what_needs_a_human(lake: LocalStack, recent_hour: datetime) -> None:
    # GIVEN an hour of four days ago that was never compacted
    old = days_ago(4)
    # WHEN status runs, as a table and as JSON
    table, as_json = cli(lake, "status"), cli(lake, "status", "--json")
    # THEN both exit 1 (an hour past the look-back window is not compacted) and say which
    assert table.code == as_json.code == Exit.ATTENTION
    assert f"{TABLE} {old:%Y-%m-%d}: hour(s) 09 not compacted" in table.out
    assert f"changelake compact --table {TABLE} --dt {old:%Y-%m-%d}" in table.out
    line = next(row for row in table.out.splitlines() if row.split()[:2] == [TABLE, f"{old:%Y-%m-%d}"])
    assert line.split()[2] == "1"  # raw files
    assert line.endswith("." * 9 + "p" + "." * 14)
    document = json.loads(as_json.out)
    days = {day["dt"]: day for day in document["tables"][0]["days"]}
    assert days[f"{old:%Y-%m-%d}"]["hours"] == {"09": "pending"}
    assert days[f"{old:%Y-%m-%d}"]["raw"]["changes"] == ROWS_PER_HOUR
    assert {q["logical_id"] for q in document["queues"]} == {
        "ChangeQueue",
        "ChangeDLQ",
        "StreamFailureQueue",
        "AsyncFailureQueue",
    }
    assert document["tables"][0]["last_change"]["partition"] == f"dt={recent_hour:%Y-%m-%d/hour=%H}"
    assert document["settings"]["bucket"] == lake.stack.bucket
    assert table.err == ""


def test_status_shows_a_running_fan_out_and_how_many_of_its_pieces_are_built(lake: LocalStack) -> None:
    # GIVEN a fan-out of yesterday's snapshot of OTHER in 3 buckets, held with bucket 0 recorded
    day = f"{days_ago(1):%Y-%m-%d}"
    with held_fan_out(lake, OTHER, day, count=3) as execution:
        # WHEN status runs, as a table and as JSON
        table, as_json = cli(lake, "status"), cli(lake, "status", "--json")
    after = cli(lake, "status")
    # THEN both show the execution, the folder its pieces build and 1 of 3 pieces built
    line = next(row for row in table.out.splitlines() if row.startswith(execution))
    assert line.split()[-6:] == [OTHER, f"dt={day}", f"snapshot/{OTHER}/dt={day}/", "1", "of", "3"]
    (running,) = json.loads(as_json.out)["fan_outs"]
    assert {
        key: running[key] for key in ("execution", "table", "started_for", "folder", "pieces", "built")
    } == {
        "execution": execution,
        "table": OTHER,
        "started_for": f"dt={day}",
        "folder": f"snapshot/{OTHER}/dt={day}/",
        "pieces": 3,
        "built": 1,
    }
    # AND once it ended, none is shown
    assert "No fan-out running" in after.out
    assert "No fan-out running" not in table.out


def test_status_shows_a_running_fan_out_of_an_hour(lake: LocalStack) -> None:
    # GIVEN a fan-out of an hour of TABLE in 2 slices, held with slice 0 recorded (compaction's plan
    # answers with the slices and their commit only)
    day = f"{days_ago(1):%Y-%m-%d}"
    with held_fan_out(lake, TABLE, day, count=2, hour="07") as execution:
        # WHEN status runs as JSON
        as_json = cli(lake, "status", "--json")
    # THEN it shows the hour it was started for, the compacted/ folder its slices build and 1 of 2
    (running,) = json.loads(as_json.out)["fan_outs"]
    assert (running["execution"], running["started_for"]) == (execution, f"dt={day}/hour=07")
    assert (running["folder"], running["pieces"], running["built"]) == (
        f"compacted/{TABLE}/dt={day}/hour=07/",
        2,
        1,
    )


def test_status_shows_each_table_with_its_changes_per_hour(lake: LocalStack, recent_hour: datetime) -> None:
    # GIVEN two tables: 'orders' with 30 changes in the hour before this one, 'payments' with 10 and
    # 40 in the two hours before this one
    # WHEN status runs, as a table and as JSON
    table, as_json = cli(lake, "status"), cli(lake, "status", "--json")
    # THEN the JSON gives each table's 48 counts, the current hour last
    tables = {t["table"]: t for t in json.loads(as_json.out)["tables"]}
    assert {TABLE, OTHER} <= set(tables)
    orders, payments = tables[TABLE]["changes_per_hour"], tables[OTHER]["changes_per_hour"]
    assert (len(orders["counts"]), len(payments["counts"])) == (48, 48)
    assert orders["counts"][-2:] == [ROWS_PER_HOUR, 0]
    assert payments["counts"][-3:] == [10, 40, 0]
    assert (payments["total"], payments["peak"], payments["complete"]) == (50, 40, True)
    assert payments["peak_hour"] == f"{recent_hour:%Y-%m-%dT%H}:00:00.000Z"
    assert tables[OTHER]["snapshot"] == {"last_day": None, "bootstrap": None}
    # AND the table shows one sparkline row per table, the peak full height
    rows = {
        line.split()[0]: line
        for line in table.out.split("Changes per hour, last 48 hours", 1)[1].splitlines()[2:4]
    }
    assert rows[OTHER].split()[:4] == [OTHER, "▁" * 45 + "▃█▁", "50", "40"]
    assert rows[TABLE].split()[1].endswith("█▁")
    # AND each table's last runs, snapshot day and bootstrap (none of them yet for 'payments')
    runs = next(
        line for line in table.out.split("bootstrap per table", 1)[1].splitlines() if line.startswith(OTHER)
    )
    assert runs.split() == [OTHER, "none", "none", "none", "-", "no"]


def test_compact_runs_the_function_and_history_shows_the_run(lake: LocalStack) -> None:
    # GIVEN the uncompacted day four days ago
    day = f"{days_ago(4):%Y-%m-%d}"
    # WHEN it is compacted with the command
    ran = cli(lake, "compact", "--table", TABLE, "--dt", day, "--json")
    # THEN the function's summary comes back and the hour is compacted
    assert ran.code == Exit.OK, ran.err
    result = json.loads(ran.out)
    assert result["error"] is None
    assert result["result"]["rows_out"] == ROWS_PER_HOUR
    assert f"invoking CompactionFunction with {{'table': '{TABLE}', 'dt': '{day}'}}" in ran.err
    # AND history lists the run, in a table and as JSON, newest first
    table = cli(lake, "history", "--table", TABLE)
    assert table.code == Exit.OK
    run_line = next(line for line in table.out.splitlines() if line.startswith("compaction"))
    assert "succeeded" in run_line
    assert f"  {TABLE}  {ROWS_PER_HOUR}  " in run_line
    runs = json.loads(cli(lake, "history", "--json").out)
    assert runs[0]["kind"] == "compaction"
    assert runs[0]["rows"] == ROWS_PER_HOUR
    # AND status no longer needs a human: the hour is compacted
    status = cli(lake, "status", "--json")
    document = json.loads(status.out)
    days = {d["dt"]: d for d in document["tables"][0]["days"]}
    assert days[day]["hours"] == {"09": "compacted"}
    assert days[day]["compacted"]["changes"] == ROWS_PER_HOUR
    assert document["last_runs"]["compaction"]["result"] == "succeeded"
    assert status.code == Exit.OK, document["attention"]


def test_snapshot_runs_the_function_and_status_and_history_show_the_run(lake: LocalStack) -> None:
    # GIVEN the day four days ago, the first of the table
    day = f"{days_ago(4):%Y-%m-%d}"
    # WHEN its snapshot is built with the command
    ran = cli(lake, "snapshot", "--table", TABLE, "--dt", day, "--json")
    # THEN the function's summary comes back
    assert ran.code == Exit.OK, ran.err
    result = json.loads(ran.out)["result"]
    assert result["built"] == [f"{TABLE}/dt={day}"]
    assert result["items"] > 0
    # AND history lists the snapshot run, in a table and as JSON, newest first
    table = cli(lake, "history", "--table", TABLE)
    assert table.code == Exit.OK
    run_line = next(line for line in table.out.splitlines() if line.startswith("snapshot"))
    assert "  succeeded  manual  " in run_line
    assert f"  {TABLE}  {result['items']}  " in run_line
    runs = json.loads(cli(lake, "history", "--json").out)
    assert (runs[0]["kind"], runs[0]["rows"], runs[0]["tables"]) == ("snapshot", result["items"], [TABLE])
    # AND status shows it as the last snapshot run, in a table and as JSON
    status = cli(lake, "status")
    last_runs = status.out.split("Last runs\n", 1)[1]
    assert any(line.startswith("snapshot ") and "succeeded" in line for line in last_runs.splitlines())
    document = json.loads(cli(lake, "status", "--json").out)
    assert document["last_runs"]["snapshot"]["result"] == "succeeded"
    assert document["last_runs"]["snapshot"]["summary"]["built"] == [f"{TABLE}/dt={day}"]
    days = {d["dt"]: d for d in document["tables"][0]["days"]}
    assert days[day]["snapshot"]["changes"] == result["items"]  # a snapshot day counts its items


def test_compact_one_hour_in_table_form(lake: LocalStack, recent_hour: datetime) -> None:
    # GIVEN today's hour
    hour = recent_hour
    # WHEN one hour of it is compacted
    ran = cli(lake, "compact", "--table", TABLE, "--dt", f"{hour:%Y-%m-%d}", "--hour", f"{hour:%H}")
    # THEN the summary table shows one partition compacted
    assert ran.code == Exit.OK, ran.err
    assert "partitions           1" in ran.out
    assert f"rows_out             {ROWS_PER_HOUR}" in ran.out


def test_dead_letters_need_a_human_until_redrive_moves_them(lake: LocalStack) -> None:
    # GIVEN a message in ChangeDLQ
    lake.sqs.send_message(QueueUrl=lake.stack.queue_url("ChangeDLQ"), MessageBody="dead letter")
    # WHEN status runs
    status = cli(lake, "status")
    # THEN it exits 1 and says what to do
    assert status.code == Exit.ATTENTION
    assert "ChangeDLQ holds 1 message(s): fix the cause, then `changelake redrive`" in status.out
    # WHEN a dry run looks, then redrive moves it
    dry = cli(lake, "redrive", "--dry-run", "--json")
    moved = cli(lake, "redrive", "--max", "10")
    # THEN the dry run counted it without moving it, and the redrive moved it
    assert dry.code == Exit.OK
    assert json.loads(dry.out)["result"]["dlq"]["dlq_visible"] == 1
    assert moved.code == Exit.OK, moved.err
    assert "moved                   1" in moved.out
    lake.sqs.purge_queue(QueueUrl=lake.stack.queue_url("ChangeQueue"))  # nothing consumes it here
    assert "ChangeDLQ holds" not in cli(lake, "status").out


def test_an_object_under_runs_that_is_not_a_run_record_is_named(lake: LocalStack) -> None:
    # GIVEN something under _runs/ that changelake.runs did not write
    key = f"_runs/compaction/dt={this_hour():%Y-%m-%d}/not-a-record.json"
    lake.s3.put_object(Bucket=lake.stack.bucket, Key=key, Body=b'{"hello": 1}')
    try:
        # WHEN history runs
        ran = cli(lake, "history", "--json")
    finally:
        lake.s3.delete_object(Bucket=lake.stack.bucket, Key=key)
    # THEN the runs are listed and the stranger is named on stderr, not silently skipped
    assert ran.code == Exit.OK
    assert all(run["request_id"] != "not-a-record" for run in json.loads(ran.out))
    assert f"changelake: note: s3://{lake.stack.bucket}/{key} is not a run record" in ran.err


def test_an_alarm_in_alarm_needs_a_human(lake: LocalStack) -> None:
    # GIVEN the template's LostRanges alarm in ALARM
    import boto3

    cloudwatch = boto3.client("cloudwatch", endpoint_url=lake.endpoint, region_name="us-east-1")
    name = alarm_name(lake.stack.name, "LostRangesAlarm")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="3 ranges lost")
    try:
        # WHEN status runs
        status = cli(lake, "status", "--json")
    finally:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test done")
    # THEN it exits 1 and names the alarm
    assert status.code == Exit.ATTENTION
    assert f"alarm {name} is in ALARM: 3 ranges lost" in json.loads(status.out)["attention"]


def test_download_keeps_the_hive_layout_and_query_reads_it(lake: LocalStack, tmp_path: Path) -> None:
    # GIVEN the compacted day four days ago
    day = f"{days_ago(4):%Y-%m-%d}"
    cli(lake, "compact", "--table", TABLE, "--dt", day)
    # WHEN it is downloaded
    ran = cli(lake, "download", "--table", TABLE, "--dt", day, "--to", str(tmp_path), "--json")
    # THEN its files are under compacted/<table>/dt=<day>/hour=09/, manifest included
    assert ran.code == Exit.OK, ran.err
    files = [Path(p) for p in json.loads(ran.out)["files"]]
    folder = tmp_path / "compacted" / TABLE / f"dt={day}" / "hour=09"
    assert {p.parent for p in files} == {folder}
    parts = [p for p in files if p.name.startswith("part-")]
    assert sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in parts) == ROWS_PER_HOUR
    assert (folder / "_manifest.json").is_file()
    # AND query reads it with DuckDB, keeping the sequence numbers' digits, as a table and as JSON
    sql = "SELECT count(*) AS n, min(sequence_number) AS first FROM changes"
    table = run_cli("query", "--lake", str(tmp_path), sql)
    assert table.code == Exit.OK, table.err
    assert table.out.splitlines()[1].split() == ["n", "first"]
    assert json.loads(run_cli("query", "--lake", str(tmp_path), sql, "--json").out) == [
        {"n": ROWS_PER_HOUR, "first": str(10**20 + 2 * 10_000)}
    ]


def test_a_raw_hour_downloads_with_its_layout(
    lake: LocalStack, recent_hour: datetime, tmp_path: Path
) -> None:
    hour = recent_hour
    ran = cli(
        lake,
        "download",
        "--table",
        TABLE,
        "--dt",
        f"{hour:%Y-%m-%d}",
        "--hour",
        f"{hour:%H}",
        "--layer",
        "raw",
        "--to",
        str(tmp_path),
    )
    assert ran.code == Exit.OK, ran.err
    assert "1 file(s)" in ran.out
    (path,) = (tmp_path / "raw" / TABLE / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}").iterdir()
    assert len(gzip.decompress(path.read_bytes()).splitlines()) == ROWS_PER_HOUR


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (("compact", "--table", "nope", "--dt", "2026-11-20"), Exit.USAGE, "no table 'nope' in the lake"),
        (("compact", "--table", TABLE, "--dt", "2999-01-01"), Exit.USAGE, "--dt 2999-01-01 is in the future"),
        (("compact", "--table", TABLE, "--dt", "yesterday"), Exit.USAGE, "--dt must be a day as YYYY-MM-DD"),
        (("compact", "--table", TABLE, "--dt", "2026-11-20", "--hour", "24"), Exit.USAGE, "--hour must be"),
        (("history", "--table", "nope"), Exit.USAGE, "no table 'nope'"),
        (("history", "--days", "0"), Exit.USAGE, "--days must be 1 to 400"),
        (
            (
                "download",
                "--table",
                TABLE,
                "--dt",
                "2026-11-20",
                "--layer",
                "snapshot",
                "--hour",
                "01",
                "--to",
                "x",
            ),
            Exit.USAGE,
            "a snapshot is a whole day",
        ),
        (
            ("download", "--table", TABLE, "--dt", "2020-01-01", "--to", "x"),
            Exit.USAGE,
            "nothing under s3://",
        ),
        (("redrive", "--max", "0"), Exit.USAGE, "--max must be 1 to"),
        (("--stack", "nope", "status"), Exit.UNREACHABLE, "no stack 'nope' at http://127.0.0.1:"),
    ],
)
def test_bad_input_gets_a_clear_message_and_exit_code(
    lake: LocalStack, argv: tuple[str, ...], code: Exit, message: str
) -> None:
    ran = cli(lake, *argv)
    assert ran.code == code
    assert ran.out == ""
    assert ran.err.startswith("changelake: ")
    assert message in ran.err


def test_no_credentials_and_no_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN no credentials anywhere (no variables, no files, no instance metadata)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN status runs against AWS
    ran = run_cli("status")
    # THEN it exits 3 and says how to give credentials
    assert ran.code == Exit.UNREACHABLE
    assert "no AWS credentials" in ran.err


def test_an_endpoint_that_does_not_answer() -> None:
    ran = run_cli("--endpoint", "http://127.0.0.1:9", "status")
    assert ran.code == Exit.UNREACHABLE
    assert "cannot reach stack 'changelake' at http://127.0.0.1:9" in ran.err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("compact", "--table", TABLE)
    assert exited.value.code == Exit.USAGE
    assert "--dt" in capsys.readouterr().err


def test_query_needs_a_lake_and_valid_sql(tmp_path: Path) -> None:
    missing = run_cli("query", "--lake", str(tmp_path / "none"), "SELECT 1")
    assert missing.code == Exit.USAGE
    assert "no lake at" in missing.err
    wrong = run_cli("query", "--lake", str(tmp_path), "SELEC nonsense")
    assert wrong.code == Exit.USAGE
    assert "DuckDB:" in wrong.err

"""The summary of a local run as the terminal and ``--json`` show it."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from changelake_local.lake import Verification
from changelake_local.snapshots import SnapshotVerification
from changelake_local.summary import Summary, print_summary, to_json


def summary(**overrides: Any) -> Summary:
    figures: dict[str, Any] = {
        "ok": True,
        "duration_seconds": 20.4,
        "written": 1028,
        "write_errors": 0,
        "stream_records": 1028,
        "raw_records": 1030,
        "raw_unique": 1028,
        "raw_files": 4,
        "compacted_records": 1028,
        "compacted_files": 1,
        "quarantined": 0,
        "quarantined_ids": [],
        "dead_lettered": 0,
        "stream_failures": 0,
        "redriven": [],
        "compactions": 2,
        "function_errors": {},
        "last_errors": {},
        "write_throughput": 50.2,
        "stored_throughput": 45.1,
        "lag_p50": 4.04,
        "lag_p99": 7.1,
        "verification": Verification(1028, [], [], [], [], []),
        "lake_dir": Path("lake"),
        "snapshots": [SnapshotVerification("orders", "2026-12-05", 297, {"2026-12-05": 297})],
        "snapshot_invocations": 2,
        "bootstraps": {"orders": {"items_read": 145, "export_time": "2026-12-05T21:39:39.576Z"}},
    }
    return Summary(**{**figures, **overrides})


def test_a_verified_run_says_what_it_counted_and_what_it_verified() -> None:
    # GIVEN a run whose lake and snapshot are complete
    # WHEN it is rendered
    lines = summary().render().splitlines()
    # THEN each figure has its line and the verdict names the snapshot day it checked
    assert lines[0] == "changes written            1028 in 20 s (50/s written, 45/s stored; 0 write errors)"
    assert "in raw/                    1028 changes (1030 lines, 4 files)" in lines
    assert "lag write -> raw/          p50 4.0 s, p99 7.1 s" in lines
    assert (
        "in snapshot/               1 days (2026-12-05 .. 2026-12-05), 297 items on the last "
        "(2 snapshot invocations; bootstrap: 145 items exported at 2026-12-05T21:39:39.576Z)"
    ) in lines
    assert lines[-1].startswith(
        "VERIFIED: every change is in raw/ (or quarantined) and exactly once in compacted/"
    )
    assert "snapshot/orders/dt=2026-12-05 equals a Scan of ChangeTable" in lines[-1]


def test_a_run_over_two_user_tables_checks_and_names_each_snapshot() -> None:
    # GIVEN a run over two of the user's tables, one bootstrapped by export and one by Scan
    two = summary(
        snapshots=[
            SnapshotVerification("user-table-1", "2026-12-05", 160, {"2026-12-05": 160}),
            SnapshotVerification("user-table-2", "2026-12-05", 150, {"2026-12-05": 150}),
        ],
        bootstraps={
            "user-table-1": {"method": "export", "items_read": 100, "export_time": "2026-12-05T23:10:00Z"},
            "user-table-2": {"method": "scan", "items_read": 100, "export_time": "2026-12-05T23:10:01Z"},
        },
    )
    # WHEN it is rendered
    lines = two.render().splitlines()
    # THEN each table has its snapshot line with its bootstrap method, and the verdict covers both
    assert (
        "in snapshot/user-table-2/  1 days (2026-12-05 .. 2026-12-05), 150 items on the last "
        "(2 snapshot invocations; bootstrap by scan: 100 items exported at 2026-12-05T23:10:01Z)"
    ) in lines
    assert any(line.startswith("in snapshot/user-table-1/  1 days") for line in lines)
    assert "for each of the 2 tables" in lines[-1]
    for table, items, method in (("user-table-1", 160, "export"), ("user-table-2", 150, "scan")):
        said = f"snapshot/{table}/dt=2026-12-05 equals a Scan of {table} "
        said += f"({items} items, bootstrapped by {method})"
        assert said in lines[-1]
    # AND the JSON has both checks
    checked = [check["table"] for check in json.loads(to_json(two))["snapshots"]]
    assert checked == ["user-table-1", "user-table-2"]


def test_a_failed_run_names_its_problems_and_errors() -> None:
    # GIVEN a run with a lost change, a function error and no lag measured
    failed = summary(
        ok=False,
        verification=Verification(2, [], ["e-1"], [], [], []),
        last_errors={"AggregatorFunction": "RuntimeError: boom"},
        problems=["messages remain in ChangeDLQ or StreamFailureQueue (not redriven)"],
        lag_p50=None,
        snapshots=[],
    )
    # WHEN it is rendered
    lines = failed.render().splitlines()
    # THEN the missing change, the error and the problem are named, and the verdict is a failure
    assert "missing in compacted/      1 ['e-1']" in lines
    assert "lag write -> raw/          n/a" in lines
    assert "last error of AggregatorFunction: RuntimeError: boom" in lines
    assert "problem: messages remain in ChangeDLQ or StreamFailureQueue (not redriven)" in lines
    assert not any(line.startswith("in snapshot/") for line in lines)
    assert lines[-1] == "VERIFICATION FAILED"


def test_the_printed_summary_points_at_the_lake_and_the_json_holds_every_figure() -> None:
    # GIVEN a run that left its lake on disk with a DuckDB sample
    done = summary(duckdb_query="SELECT 1", duckdb_sample="1")
    # WHEN printed and turned into JSON
    out = io.StringIO()
    print_summary(done, out)
    document = json.loads(to_json(done))
    # THEN the text says where the lake is and how to query it
    assert "The lake is on local disk under lake/ (raw/, compacted/, snapshot/, quarantine/" in out.getvalue()
    assert "Query it with DuckDB:\n\nSELECT 1;\n" in out.getvalue()
    # AND the JSON has the figures, the verification and the snapshot check as objects
    assert (document["written"], document["lake_dir"]) == (1028, "lake")
    assert document["verification"]["missing_in_compacted"] == []
    assert document["snapshot"]["items"] == 297


def test_a_run_with_pieces_counts_the_fan_out_and_its_verdict_covers_it() -> None:
    # GIVEN a verified run whose nightly runs handed 3 days and hours to the fan-out (12 pieces)
    run = summary(fan_out_executions={"SUCCEEDED": 3}, fan_out_pieces=12)
    # WHEN it is rendered
    lines = run.render().splitlines()
    # THEN the fan-out has its line, and the verdict says the executions built the pieces
    assert "fan-out                    3 executions {'SUCCEEDED': 3}, 12 pieces built" in lines
    assert lines[-1].startswith("VERIFIED: ")
    assert lines[-1].endswith("; the fan-out state machine built 12 pieces in 3 executions, all succeeded")
    assert json.loads(to_json(run))["fan_out_pieces"] == 12


def test_a_run_without_the_fan_out_says_nothing_of_it() -> None:
    # GIVEN a run that handed nothing off (the template's thresholds)
    lines = summary().render().splitlines()
    # THEN no fan-out line, and the verdict is the one it always was
    assert not [line for line in lines if line.startswith("fan-out")]
    assert "fan-out" not in lines[-1]

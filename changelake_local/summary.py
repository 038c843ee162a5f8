"""What a local run did, as the terminal and ``--json`` show it: the ``Summary`` of a run and its
rendering (counts, lag, verification, the snapshot check of each table, the verdict)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from changelake_local.lake import Verification
from changelake_local.snapshots import SnapshotVerification


@dataclass
class Summary:
    """What a run did and whether the lake is complete."""

    ok: bool
    duration_seconds: float
    written: int
    write_errors: int
    stream_records: int
    raw_records: int
    raw_unique: int
    raw_files: int
    compacted_records: int
    compacted_files: int
    quarantined: int
    quarantined_ids: list[str]
    dead_lettered: int
    stream_failures: int
    redriven: list[dict[str, Any]]
    compactions: int
    function_errors: dict[str, int]
    last_errors: dict[str, str]
    write_throughput: float
    stored_throughput: float
    lag_p50: float | None
    lag_p99: float | None
    verification: Verification
    lake_dir: Path | None
    files_per_partition: dict[str, int] = field(default_factory=dict)
    duckdb_query: str | None = None
    duckdb_sample: str | None = None
    problems: list[str] = field(default_factory=list)
    #: The snapshot check of each table (ChangeTable's, or each of the user's tables).
    snapshots: list[SnapshotVerification] = field(default_factory=list)
    snapshot_invocations: int = 0
    #: SnapshotFunction's answer to each table's bootstrap, by table.
    bootstraps: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The fan-out state machine's executions by how they ended, and the pieces they built.
    fan_out_executions: dict[str, int] = field(default_factory=dict)
    fan_out_pieces: int = 0

    @property
    def snapshot(self) -> SnapshotVerification | None:
        """The first table's snapshot check (the only one when the stack follows its ChangeTable)."""
        return self.snapshots[0] if self.snapshots else None

    @property
    def bootstrap(self) -> dict[str, Any] | None:
        """The first table's bootstrap."""
        return self.bootstraps.get(self.snapshots[0].table) if self.snapshots else None

    def render(self) -> str:
        v = self.verification
        lag = (
            f"p50 {self.lag_p50:.1f} s, p99 {self.lag_p99:.1f} s"
            if self.lag_p50 is not None and self.lag_p99 is not None
            else "n/a"
        )
        lines = [
            f"changes written            {self.written} in {self.duration_seconds:.0f} s "
            f"({self.write_throughput:.0f}/s written, {self.stored_throughput:.0f}/s stored; "
            f"{self.write_errors} write errors)",
            f"seen on the stream         {self.stream_records}",
            f"in raw/                    {self.raw_unique} changes "
            f"({self.raw_records} lines, {self.raw_files} files)",
            f"in compacted/              {self.compacted_records} lines in {self.compacted_files} files "
            f"({self.compactions} compaction invocations)",
            f"quarantined                {self.quarantined}",
            f"dead-lettered              {self.dead_lettered}; stream ranges failed {self.stream_failures}; "
            f"redrive runs {len(self.redriven)}",
            f"lag write -> raw/          {lag}",
            f"function errors            {self.function_errors or 'none'}",
            f"missing in raw/            {len(v.missing_in_raw)} {v.missing_in_raw[:5]}",
            f"missing in compacted/      {len(v.missing_in_compacted)} {v.missing_in_compacted[:5]}",
            f"twice in compacted/        {len(v.duplicated_in_compacted)} {v.duplicated_in_compacted[:5]}",
            f"unexpected in compacted/   {len(v.unexpected_in_compacted)}",
        ]
        lines += self._snapshot_lines()
        if self.fan_out_executions:
            lines.append(
                f"fan-out                    {sum(self.fan_out_executions.values())} executions "
                f"{self.fan_out_executions}, {self.fan_out_pieces} pieces built"
            )
        lines += [f"last error of {name}: {error}" for name, error in self.last_errors.items()]
        lines += [f"problem: {problem}" for problem in self.problems]
        lines.append(self._verdict())
        return "\n".join(lines)

    def _snapshot_lines(self) -> list[str]:
        lines = []
        several = len(self.snapshots) > 1
        for s in self.snapshots:
            days = f"{min(s.days)} .. {max(s.days)}" if s.days else "none"
            bootstrap = self.bootstraps.get(s.table) or {}
            method = f" by {bootstrap['method']}" if bootstrap.get("method") else ""
            based = (
                f"bootstrap{method}: {bootstrap.get('items_read')} items exported at "
                f"{bootstrap.get('export_time')}"
                if "items_read" in bootstrap
                else f"bootstrap{method}: {bootstrap.get('error', 'none')}"
            )
            # one table: the lines as they always were; several: each names its table
            layer, check = (
                (f"in snapshot/{s.table}/", "  vs Scan/replay")
                if several
                else (
                    "in snapshot/",
                    "snapshot vs Scan/replay",
                )
            )
            lines += [
                f"{layer:<27}{len(s.days)} days ({days}), {s.items} items on the last "
                f"({self.snapshot_invocations} snapshot invocations; {based})",
                f"{check:<27}missing {len(s.missing)} {s.missing[:3]}, unexpected "
                f"{len(s.unexpected)} {s.unexpected[:3]}, different {len(s.different)} {s.different[:3]}, "
                f"twice {len(s.twice)}, days missing {s.missing_days[:5]}; quarantined items left out "
                f"{s.quarantined_items}",
            ]
        return lines

    def _verdict(self) -> str:
        if not self.ok:
            return "VERIFICATION FAILED"
        verdict = "VERIFIED: every change is in raw/ (or quarantined) and exactly once in compacted/"
        if len(self.snapshots) == 1:
            s = self.snapshots[0]
            verdict += (
                f", and snapshot/{s.table}/dt={s.last_day} equals a Scan of ChangeTable taken when the "
                f"writes stopped ({s.items} items, exact values; {len(s.days) - 1} earlier days equal "
                "their replay of raw/)"
            )
        elif self.snapshots:
            each = "; ".join(
                f"snapshot/{s.table}/dt={s.last_day} equals a Scan of {s.table} ({s.items} items, "
                f"bootstrapped by {(self.bootstraps.get(s.table) or {}).get('method', '?')})"
                for s in self.snapshots
            )
            verdict += (
                f", for each of the {len(self.snapshots)} tables; each table's snapshot equals a Scan of "
                f"it taken when the writes stopped (exact values; earlier days equal their replay of "
                f"raw/): {each}"
            )
        if self.fan_out_pieces:
            verdict += (
                f"; the fan-out state machine built {self.fan_out_pieces} pieces in "
                f"{self.fan_out_executions.get('SUCCEEDED', 0)} executions, all succeeded"
            )
        return verdict


def print_summary(summary: Summary, out: TextIO = sys.stdout) -> None:
    print(summary.render(), file=out)
    if summary.lake_dir is not None:
        print(
            f"\nThe lake is on local disk under {summary.lake_dir}/ (raw/, compacted/, snapshot/, "
            f"quarantine/; function logs in {summary.lake_dir}/logs/).",
            file=out,
        )
    if summary.duckdb_query:
        print(f"\nQuery it with DuckDB:\n\n{summary.duckdb_query};\n", file=out)
        print(summary.duckdb_sample or "", file=out)


def to_json(summary: Summary) -> str:
    data = {
        key: value
        for key, value in summary.__dict__.items()
        if key not in ("verification", "lake_dir", "snapshots")
    }
    data["verification"] = summary.verification.__dict__
    data["snapshot"] = summary.snapshot.__dict__ if summary.snapshot is not None else None
    data["bootstrap"] = summary.bootstrap
    data["snapshots"] = [snapshot.__dict__ for snapshot in summary.snapshots]
    data["lake_dir"] = str(summary.lake_dir) if summary.lake_dir else None
    return json.dumps(data, default=str, indent=2)

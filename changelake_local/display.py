"""Live progress: a rich table refreshed twice a second on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from changelake_local.pipeline import Progress


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def progress_table(progress: Progress) -> Group:
    table = Table(title=f"changelake local — {progress.phase} — {progress.elapsed:.0f} s", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("changes written", f"{progress.written}  ({progress.write_rate:.0f}/s)")
    table.add_row("seen on the stream", str(progress.stream_records))
    table.add_row("in flight in SQS (messages)", str(progress.in_flight))
    table.add_row("stored in raw/", str(progress.raw_unique))
    table.add_row("compacted", str(progress.compacted))
    table.add_row("quarantined", str(progress.quarantined))
    table.add_row("dead-lettered (ChangeDLQ)", str(progress.dead_lettered))
    table.add_row("stream ranges failed", str(progress.stream_failures))
    table.add_row(
        "lag write -> raw/ p50 / p99", f"{_seconds(progress.lag_p50)} / {_seconds(progress.lag_p99)}"
    )
    table.add_row(
        "throughput stored",
        f"{progress.raw_unique / progress.elapsed:.0f}/s" if progress.elapsed > 0 else "-",
    )
    if progress.function_errors:
        table.add_row("function errors", ", ".join(f"{k} {v}" for k, v in progress.function_errors.items()))
    partitions = Table(title="raw/ files per partition", show_header=True)
    partitions.add_column("table/dt/hour")
    partitions.add_column("files", justify="right")
    for name, files in sorted(progress.files_per_partition.items())[-8:]:
        partitions.add_row(name, str(files))
    return Group(table, partitions)


class LiveDisplay:
    """Feed it ``Progress``; a rich Live table on a TTY, a line every ``plain_every`` s otherwise."""

    def __init__(
        self, out: TextIO | None = None, *, plain_every: float = 5.0, force_plain: bool = False
    ) -> None:
        self.out = out or sys.stdout  # looked up now: a default argument would keep the stdout of import time
        self.tty = self.out.isatty() and not force_plain
        self.plain_every = plain_every
        self._last_plain = 0.0
        self._latest: Progress | None = None
        self._live: Live | None = None

    def __enter__(self) -> LiveDisplay:
        if self.tty:
            self._live = Live(
                get_renderable=self._renderable,
                console=Console(file=self.out),
                refresh_per_second=2,
                transient=False,
            )
            self._live.start()
        return self

    def _renderable(self) -> Group | Table:
        return progress_table(self._latest) if self._latest else Table(title="starting…")

    def __call__(self, progress: Progress) -> None:
        self._latest = progress
        if self.tty:
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every or progress.phase != "streaming":
            self._last_plain = now
            print(
                f"[{progress.elapsed:5.0f} s {progress.phase}] written {progress.written} "
                f"({progress.write_rate:.0f}/s) stream {progress.stream_records} sqs {progress.in_flight} "
                f"raw {progress.raw_unique} compacted {progress.compacted} "
                f"quarantined {progress.quarantined} dlq {progress.dead_lettered} "
                f"lag p50 {_seconds(progress.lag_p50)} p99 {_seconds(progress.lag_p99)}",
                file=self.out,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

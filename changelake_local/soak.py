"""The soak: the local pipeline at a sustained rate with a fault profile on, watched as it runs.

``run_soak(SoakOptions(...))`` runs ``run_pipeline`` for ``duration`` seconds with a fault
profile (``changelake_local.faults``) and, every ``sample_seconds`` while the writes go on, records
the RSS of this process (the pipeline: the mappings, the handlers and the runner; moto is a child
process, the "AWS", and holds the data by design) and the stream mapping's IteratorAge (Lambda's
consumer-lag metric: at each invocation the age of the batch's last record; the largest of the
interval). At the end, ``SoakReport`` says whether nothing was lost or duplicated (the run's own
verification, after the faults cleared and the pipeline drained), memory stayed flat and the lag
did not grow. ``make soak`` runs it through the slow test ``tests/integration/test_soak.py``.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from changelake_local.faults import PROFILES, FaultInjector, injecting
from changelake_local.lake import percentile
from changelake_local.pipeline import (
    LOCAL_PARAMETERS,
    Progress,
    ProgressCallback,
    RunOptions,
    Summary,
    run_pipeline,
)

#: The share of the run before the memory baseline is taken: cold starts, the bootstrap export and
#: the allocator's first arenas.
WARM_UP_SHARE = 0.2
#: When the soak exports the table and bootstraps the snapshot: inside the warm-up, so that this
#: one-time work (a Scan of every item, the snapshot function's cold start) is in the baseline.
#: Taken halfway, as ``make run`` does, it raised RSS by a step of 39 MB (114 -> 153 MB) in a
#: ten-minute run with no nights, flat before and after: a one-time cost, judged as growth.
BOOTSTRAP_AFTER_SECONDS = 30.0
#: The memory bound. RSS may exceed the baseline by this share (allocator arenas and fragmentation
#: move RSS by a few percent with no leak) plus ``BOOKKEEPING_BYTES`` per change written after the
#: baseline: the runner itself keeps every change's event ID and creation time (its ledger), the
#: IDs it saw in raw/ and compacted/ and each change's lag, by design, to verify at the end (a few
#: hundred bytes a change as Python objects). A leak of a batch, a client or an item per
#: invocation grows faster than that.
MEMORY_GROWTH_SHARE = 0.10
BOOKKEEPING_BYTES = 512
#: Seconds before a message the aggregator failed (an injected fault) is received again. Lambda
#: leaves it invisible for the queue's visibility timeout (660 s in the template), which would hold
#: the drain past its timeout and make the lag the visibility timer's; the soak measures the pipeline.
FAILED_VISIBILITY_SECONDS = 10
#: The lag bound: the p99 of the last third of the IteratorAge samples may exceed the first third's by
#: this factor plus ``LAG_SLACK_SECONDS``. Under faults one sample can hold a retried batch (the
#: mapping backs off up to 2 s per retry, on top of the 1 s batching window), so small p99s differ by
#: seconds with no trend; a backlog that grows keeps growing, past any fixed slack.
LAG_GROWTH_FACTOR = 1.5
LAG_SLACK_SECONDS = 5.0


def process_rss(pid: int | str = "self") -> int:
    """Resident set size of a process in bytes (Linux: /proc/<pid>/statm)."""
    resident_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    elapsed: float
    rss_bytes: int
    #: The largest IteratorAge of the interval (None: no stream batch was invoked in it).
    iterator_age: float | None
    written: int


class Sampler:
    """A progress callback: while the writes go on, one ``Sample`` every ``every`` seconds."""

    def __init__(
        self,
        every: float,
        *,
        forward: ProgressCallback | None = None,
        rss: Callable[[], int] = process_rss,
    ) -> None:
        self.every = every
        self.forward = forward
        self.samples: list[Sample] = []
        self._rss = rss
        self._next = every
        self._age: float | None = None
        self._writes_stopped = False

    def __call__(self, progress: Progress) -> None:
        if self.forward is not None:
            self.forward(progress)
        # from the drain on (the final compaction reports "compacting" again) the writes have
        # stopped and the faults cleared: nothing more to sample
        self._writes_stopped = self._writes_stopped or progress.phase not in ("streaming", "compacting")
        if self._writes_stopped:
            return
        if progress.iterator_age is not None:
            self._age = max(self._age or 0.0, progress.iterator_age)
        if progress.elapsed >= self._next:
            self.samples.append(Sample(progress.elapsed, self._rss(), self._age, progress.written))
            self._age = None
            self._next = progress.elapsed + self.every


@dataclass(frozen=True)
class MemoryVerdict:
    baseline_bytes: int
    end_bytes: int
    allowed_bytes: int

    @property
    def ok(self) -> bool:
        return self.end_bytes <= self.allowed_bytes


@dataclass(frozen=True)
class LagVerdict:
    first_p99: float
    last_p99: float
    allowed: float

    @property
    def ok(self) -> bool:
        return self.last_p99 <= self.allowed


def _share(samples: Sequence[Sample], start: float, end: float) -> list[Sample]:
    """The samples from ``start`` to ``end`` (shares of the sampled span)."""
    count = len(samples)
    return list(samples[int(count * start) : max(int(count * end), int(count * start) + 1)])


def memory_verdict(samples: Sequence[Sample]) -> MemoryVerdict:
    """Median RSS of the last tenth against the tenth after the warm-up (``WARM_UP_SHARE``)."""
    if len(samples) < 10:
        raise ValueError(f"{len(samples)} samples: a memory verdict needs at least 10")
    baseline = _share(samples, WARM_UP_SHARE, WARM_UP_SHARE + 0.1)
    end = _share(samples, 0.9, 1.0)
    baseline_bytes = int(statistics.median(s.rss_bytes for s in baseline))
    changes_since = end[-1].written - baseline[0].written
    allowed = int(baseline_bytes * (1 + MEMORY_GROWTH_SHARE) + BOOKKEEPING_BYTES * changes_since)
    return MemoryVerdict(baseline_bytes, int(statistics.median(s.rss_bytes for s in end)), allowed)


def _p99(samples: Sequence[Sample]) -> float:
    return percentile([s.iterator_age for s in samples if s.iterator_age is not None], 0.99) or 0.0


def lag_verdict(samples: Sequence[Sample]) -> LagVerdict:
    """p99 IteratorAge of the last third of the samples against the first third's."""
    if len(samples) < 3:
        raise ValueError(f"{len(samples)} samples: a lag verdict needs at least 3")
    first, last = _p99(_share(samples, 0.0, 1 / 3)), _p99(_share(samples, 2 / 3, 1.0))
    return LagVerdict(first, last, first * LAG_GROWTH_FACTOR + LAG_SLACK_SECONDS)


@dataclass(frozen=True)
class Minute:
    minute: int
    rss_bytes: int
    iterator_age_p99: float | None


def per_minute(samples: Sequence[Sample]) -> list[Minute]:
    """Median RSS and IteratorAge p99 of each minute of the run."""
    minutes: dict[int, list[Sample]] = {}
    for sample in samples:
        minutes.setdefault(int(sample.elapsed // 60), []).append(sample)
    return [
        Minute(
            minute,
            int(statistics.median(s.rss_bytes for s in group)),
            percentile([s.iterator_age for s in group if s.iterator_age is not None], 0.99),
        )
        for minute, group in sorted(minutes.items())
    ]


@dataclass(frozen=True)
class SoakOptions:
    duration: float = 600.0
    rate: float = 50.0
    #: 0: compaction and snapshots run once, after the drain, not during the sampled run. The soak
    #: judges the functions that run all the time (the stream consumer, the aggregator and their
    #: mappings); in Lambda each nightly function has execution environments of its own, while here
    #: it would run in the sampled process and add up to its memory budgets (128 MB each; bench
    #: rows 5 and 7 measure those): a ten-minute run with a night every 60 s rose in steps at the
    #: nights from 161 to 359 MB and was then flat.
    night: float = 0.0
    faults: str = "flaky"
    fault_seed: int = 1
    sample_seconds: float = 5.0
    lake_dir: Path | None = None


@dataclass
class SoakReport:
    options: SoakOptions
    summary: Summary
    samples: list[Sample]
    faults_injected: int
    memory: MemoryVerdict = field(init=False)
    lag: LagVerdict = field(init=False)

    def __post_init__(self) -> None:
        self.memory = memory_verdict(self.samples)
        self.lag = lag_verdict(self.samples)

    @property
    def lost(self) -> int:
        v = self.summary.verification
        return len(v.missing_in_raw) + len(v.missing_in_compacted)

    @property
    def duplicated(self) -> int:
        return len(self.summary.verification.duplicated_in_compacted)

    @property
    def ok(self) -> bool:
        return self.summary.ok and self.memory.ok and self.lag.ok

    def render(self) -> str:
        mb = 1024 * 1024
        o, m, g = self.options, self.memory, self.lag
        lines = [
            f"soak: {o.duration:.0f} s at {o.rate:.0f} changes/s, faults {o.faults} (seed {o.fault_seed}), "
            f"{self.faults_injected} injected; {self.summary.written} changes written; "
            f"{f'a night every {o.night:.0f} s' if o.night > 0 else 'nights only after the drain'}",
            f"lost {self.lost}, duplicated {self.duplicated}, pipeline verified: {self.summary.ok}",
            f"RSS: start {self.samples[0].rss_bytes / mb:.0f} MB, baseline after warm-up "
            f"{m.baseline_bytes / mb:.0f} MB, end {m.end_bytes / mb:.0f} MB "
            f"(allowed {m.allowed_bytes / mb:.0f} MB): {'flat' if m.ok else 'GROWING'}",
            f"IteratorAge p99: first third {g.first_p99:.1f} s, last third {g.last_p99:.1f} s "
            f"(allowed {g.allowed:.1f} s): {'not growing' if g.ok else 'GROWING'}",
            f"write -> raw/ lag over the run: p50 {self.summary.lag_p50 or 0:.1f} s, "
            f"p99 {self.summary.lag_p99 or 0:.1f} s",
            "",
            "| minute | RSS (MB, median) | IteratorAge p99 (s) |",
            "| ---: | ---: | ---: |",
        ]
        for minute in per_minute(self.samples):
            age = "-" if minute.iterator_age_p99 is None else f"{minute.iterator_age_p99:.1f}"
            lines.append(f"| {minute.minute + 1} | {minute.rss_bytes / mb:.0f} | {age} |")
        lines.append("")
        lines.append(f"verdict: {'PASS' if self.ok else 'FAIL'}")
        return "\n".join(lines)


def run_soak(options: SoakOptions, *, forward: ProgressCallback | None = None) -> SoakReport:
    """Run the local pipeline as ``options`` say, sampled; faults clear when the writes stop."""
    if options.faults not in PROFILES:
        raise ValueError(f"faults must be one of {', '.join(PROFILES)}, not {options.faults!r}")
    injector = FaultInjector(PROFILES[options.faults], seed=options.fault_seed)
    sampler = Sampler(options.sample_seconds, forward=forward)
    with injecting(injector) as hooks:
        summary = run_pipeline(
            RunOptions(
                duration=options.duration,
                rate=options.rate,
                night=options.night,
                bootstrap_after=BOOTSTRAP_AFTER_SECONDS,
                parameters=LOCAL_PARAMETERS,
                hooks=hooks,
                lake_dir=options.lake_dir,
                duckdb_sample=False,
                failed_visibility_seconds=FAILED_VISIBILITY_SECONDS,
            ),
            on_progress=sampler,
        )
    return SoakReport(options, summary, sampler.samples, injector.total)

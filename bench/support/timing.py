"""Timing: the least-CPU run of several repeats, variants taking turns, peak RSS, the gzip floor,
and the figures a row reports from them."""

from __future__ import annotations

import gzip
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    wall: float  # best wall seconds
    cpu: float  # process CPU seconds of that same repeat


def best_of(work: Callable[[], object], repeats: int) -> Timing:
    """The run of ``work`` with the least CPU time of ``repeats`` (and its wall time).

    CPU time (``time.process_time``) is what ratios are computed from: on a shared machine the
    wall clock also counts time other processes held the core.
    """
    best: Timing | None = None
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        work()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if best is None or cpu < best.cpu:
            best = Timing(wall, cpu)
    assert best is not None
    return best


def interleaved(works: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """Each work's least-CPU run of ``repeats``, the works taking turns (a, b, c, a, b, c, ...).

    The ratios of a row come from here: on a shared machine the load changes from minute to
    minute, and variants measured one after the other in separate processes can differ by 1.5x
    for that alone; taking turns in one process exposes every variant to the same load.
    """
    best: dict[str, Timing] = {}
    for _ in range(repeats):
        for name, work in works.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            work()
            timing = Timing(time.perf_counter() - wall0, time.process_time() - cpu0)
            if name not in best or timing.cpu < best[name].cpu:
                best[name] = timing
    return best


def per_record(timing: Timing, records: int) -> dict[str, float]:
    """A variant's figures: its wall and CPU seconds, records per CPU second, CPU us per record."""
    return {
        "wall_s": timing.wall,
        "cpu_s": timing.cpu,
        "rate": records / timing.cpu,
        "cpu_us_per_record": timing.cpu / records * 1e6,
    }


def turns(works: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """``interleaved`` as figures: each work's CPU and wall seconds taking turns with the others."""
    return {name: {"cpu_s": t.cpu, "wall_s": t.wall} for name, t in interleaved(works, repeats).items()}


def take_turns_figures(
    variants: Iterable[tuple[str, dict[str, Any] | None]], taken: Mapping[str, dict[str, float]], records: int
) -> None:
    """Give each variant the CPU and wall seconds it had taking turns (``turns``, run in a process of
    its own; the row's ratios come from these), keeping the CPU of its own process as
    ``own_process_cpu_s`` (its peak RSS is that process's), and the per-record figures of the turns."""
    for name, figures in variants:
        if figures is None:
            continue
        figures["own_process_cpu_s"] = figures["cpu_s"]
        figures.update(taken[name])
        figures["rate"] = records / figures["cpu_s"]
        figures["cpu_us_per_record"] = figures["cpu_s"] / records * 1e6


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gzip_floor(data: bytes, level: int) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)

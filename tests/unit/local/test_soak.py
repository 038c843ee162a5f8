"""The soak's verdicts (memory flat, lag not growing), its sampler and the mapping's IteratorAge."""

from __future__ import annotations

import pytest

from changelake_local.esm import IteratorAge
from changelake_local.pipeline import Progress
from changelake_local.soak import (
    BOOKKEEPING_BYTES,
    MEMORY_GROWTH_SHARE,
    Sample,
    Sampler,
    lag_verdict,
    memory_verdict,
    per_minute,
)

MB = 1024 * 1024
RATE = 50  # changes a second, one sample every 5 s


def samples(rss: list[int], ages: list[float | None] | None = None) -> list[Sample]:
    ages = ages if ages is not None else [1.0] * len(rss)
    return [
        Sample(elapsed=5.0 * (i + 1), rss_bytes=value, iterator_age=age, written=5 * RATE * (i + 1))
        for i, (value, age) in enumerate(zip(rss, ages, strict=True))
    ]


def test_memory_that_levels_off_after_the_warm_up_is_flat() -> None:
    # GIVEN RSS climbing through the warm-up (cold starts), then steady with noise
    rss = [100 * MB + i * 5 * MB for i in range(24)] + [220 * MB + (i % 3) * MB for i in range(96)]
    # WHEN judged THEN flat, the baseline taken after the warm-up
    verdict = memory_verdict(samples(rss))
    assert verdict.ok, verdict
    assert 219 * MB <= verdict.baseline_bytes <= 222 * MB


def test_memory_that_keeps_growing_past_the_bookkeeping_allowance_fails() -> None:
    # GIVEN RSS steady after the warm-up, then growing 1 MB every sample (5 s), far above the
    # runner's bookkeeping (BOOKKEEPING_BYTES for each of 250 changes a sample)
    rss = [200 * MB] * 30 + [200 * MB + i * MB for i in range(90)]
    # WHEN judged THEN growing
    verdict = memory_verdict(samples(rss))
    assert not verdict.ok, verdict
    assert verdict.allowed_bytes < 200 * MB * (1 + MEMORY_GROWTH_SHARE) + BOOKKEEPING_BYTES * 120 * 250 + 1


def test_growth_within_the_bookkeeping_allowance_is_flat() -> None:
    # GIVEN RSS growing by the runner's own bookkeeping for each change written, no more
    rss = [200 * MB + i * BOOKKEEPING_BYTES * 5 * RATE // 2 for i in range(120)]
    # WHEN judged THEN flat
    assert memory_verdict(samples(rss)).ok


def test_a_lag_with_spikes_but_no_trend_does_not_grow() -> None:
    # GIVEN IteratorAge of about a second, with a retried batch (4 s) now and then, and idle intervals
    ages: list[float | None] = [4.0 if i % 17 == 0 else None if i % 11 == 0 else 1.0 for i in range(120)]
    # WHEN judged THEN not growing
    verdict = lag_verdict(samples([MB] * 120, ages))
    assert verdict.ok, verdict


def test_a_lag_that_keeps_growing_fails() -> None:
    # GIVEN a backlog: each interval's IteratorAge a quarter second older than the one before
    ages: list[float | None] = [1.0 + i * 0.25 for i in range(120)]
    # WHEN judged THEN growing
    verdict = lag_verdict(samples([MB] * 120, ages))
    assert not verdict.ok, verdict
    assert verdict.last_p99 > 30


def test_too_few_samples_for_a_verdict_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        memory_verdict(samples([MB] * 9))
    with pytest.raises(ValueError, match="at least 3"):
        lag_verdict(samples([MB] * 2))


def test_per_minute_takes_the_median_rss_and_the_p99_age_of_each_minute() -> None:
    # GIVEN three minutes of samples (every 5 s from 5 s), the second with one stream batch, the
    # third with none
    rss = [10 * MB] * 11 + [30 * MB] + [20 * MB] * 13
    ages: list[float | None] = [1.0] * 11 + [9.0] + [None] * 13
    # WHEN summarized per minute THEN each minute has its median RSS and its own p99
    minutes = per_minute(samples(rss, ages))
    assert [(m.minute, m.rss_bytes // MB, m.iterator_age_p99) for m in minutes] == [
        (0, 10, 1.0),
        (1, 20, 9.0),
        (2, 20, None),
    ]


def progress(elapsed: float, phase: str = "streaming", age: float | None = None) -> Progress:
    return Progress(phase, elapsed, 0, 0.0, 0, 0, 0, 0, 0, 0, 0, None, None, {}, {}, iterator_age=age)


def test_the_sampler_keeps_the_largest_age_of_each_interval_and_stops_when_draining() -> None:
    # GIVEN a sampler every 5 s and progress reports every second
    sampler = Sampler(5.0, rss=lambda: 7)
    # WHEN reports come in, with ages, then the drain begins
    for second in range(1, 11):
        sampler(progress(float(second), age=float(second % 4)))
    sampler(progress(15.0, phase="draining", age=99.0))
    sampler(progress(20.0, phase="compacting", age=99.0))  # the final compaction, after the drain
    # THEN one sample per interval, each with the interval's largest age, none while draining
    assert [(s.elapsed, s.iterator_age, s.rss_bytes) for s in sampler.samples] == [
        (5.0, 3.0, 7),
        (10.0, 3.0, 7),
    ]


def test_iterator_age_is_the_largest_age_of_a_batchs_last_record_since_the_last_take() -> None:
    # GIVEN Lambda's IteratorAge at a fixed clock
    age = IteratorAge(clock=lambda: 1000.0)

    def batch(*created: float) -> list[dict[str, dict[str, float]]]:
        return [{"dynamodb": {"ApproximateCreationDateTime": at}} for at in created]

    # WHEN batches are invoked THEN each counts its last record, and take() starts a new period
    assert age.take() is None
    age.observe(batch(990.0, 998.0))
    age.observe(batch(995.0))
    assert age.take() == 5.0
    assert age.take() is None
    age.observe(batch(1001.0))  # a clock behind the record's time: no negative age
    assert age.take() == 0.0

"""The soak (marked slow: ``make soak``, not ``make test``): the local pipeline for ten minutes at a
sustained rate with a fault profile on; nothing lost or duplicated, memory flat, lag not growing.

``SOAK_DURATION`` (seconds, default 600), ``SOAK_RATE`` (changes/s, default 50), ``SOAK_FAULTS``
(a profile of ``changelake_local.faults``, default flaky) and ``SOAK_REPORT`` (a file the report is
also written to) come from the environment (``make soak DURATION= RATE= FAULTS=``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from changelake_local.display import LiveDisplay
from changelake_local.soak import SoakOptions, run_soak

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_pipeline_holds_steady_under_faults_for_the_whole_soak(tmp_path: Path) -> None:
    # GIVEN the local stack, a sustained write rate and a fault profile on until the writes stop
    options = SoakOptions(
        duration=float(os.environ.get("SOAK_DURATION", "600")),
        rate=float(os.environ.get("SOAK_RATE", "50")),
        faults=os.environ.get("SOAK_FAULTS", "flaky"),
        lake_dir=tmp_path / "lake",
    )

    # WHEN it runs for the duration, sampled every few seconds, then drains and verifies
    with LiveDisplay(force_plain=True) as display:
        report = run_soak(options, forward=display)
    text = report.render()
    print(text)
    if path := os.environ.get("SOAK_REPORT"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")

    # THEN nothing was lost or duplicated, memory stayed flat and the lag did not grow
    assert (report.lost, report.duplicated) == (0, 0), report.summary.verification
    assert report.summary.ok, report.summary.render()
    assert report.memory.ok, report.memory
    assert report.lag.ok, report.lag

"""Running changelake locally: a local AWS endpoint, the template deployed to it, the functions in-process.

``run_pipeline(RunOptions(...))`` (the API behind ``make run``) returns a ``Summary`` with the
verification, throughput and lag; ``Hooks`` injects faults (a poison record, failing invocations).
Test data (stream records, the sample events) is in ``changelake_testing``.
"""

from __future__ import annotations

from changelake_local.esm import Hooks
from changelake_local.pipeline import LOCAL_PARAMETERS, RunOptions, Summary, run_pipeline

__all__ = ["LOCAL_PARAMETERS", "Hooks", "RunOptions", "Summary", "run_pipeline"]

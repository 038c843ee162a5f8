"""Running changelake locally: a local AWS endpoint, the template deployed to it, the functions in-process.

``run_pipeline`` (the API behind ``make run``) returns a ``Summary`` with the verification,
throughput and lag; ``Hooks`` injects faults (a poison record, failing invocations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from changelake_local.esm import Hooks
    from changelake_local.pipeline import LOCAL_PARAMETERS, Summary, run_pipeline

__all__ = ["LOCAL_PARAMETERS", "Hooks", "Summary", "run_pipeline"]


def __getattr__(name: str) -> Any:
    # lazy, so that ``changelake_local.stream_records`` stays importable without boto3 and rich
    if name == "Hooks":
        from changelake_local.esm import Hooks

        return Hooks
    if name in ("LOCAL_PARAMETERS", "Summary", "run_pipeline"):
        from changelake_local import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)

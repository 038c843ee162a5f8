"""How one invocation builds a folder's parts: one value, built from a function's settings once, taken
by every builder (compaction's hours, the snapshot's days, the pieces of either)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: 128 MiB, the settings' default for both: parts Athena and DuckDB split well, and a sorter that
#: spills long before the function's memory is reached (docs/performance.md, rows 5 and 7: an hour
#: compacts in 197 MB peak RSS, a day of a 1,000 MB table snapshots in 176 MB).
DEFAULT_BYTES = 128 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BuildLimits:
    """``target_part_bytes``: a part is closed once it passes this many uncompressed bytes;
    ``memory_budget_bytes``: what the external sorter holds before it spills a sorted run to
    ``spill_dir`` (Lambda's /tmp)."""

    target_part_bytes: int = DEFAULT_BYTES
    memory_budget_bytes: int = DEFAULT_BYTES
    spill_dir: Path = Path("/tmp")  # noqa: S108 - Lambda's scratch space

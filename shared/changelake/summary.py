"""What a batch run (compaction, the snapshot) reports: one summary shape, one way to fail."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from changelake.exceptions import RunError


@dataclass(slots=True)
class RunSummary:
    """A run's summary: its trigger, bytes in and out, what failed and what was handed on. The
    variants add their own counts and name their error (``ERROR``) and what failed (``UNDONE``)."""

    BYTES_METRICS: ClassVar[frozenset[str]] = frozenset({"BytesIn", "BytesOut"})
    ERROR: ClassVar[type[RunError]] = RunError
    #: How the error counts what failed: ``<n> <UNDONE>: <the first five failures>``.
    UNDONE: ClassVar[str] = "item(s) not done"

    trigger: str
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    handed_off: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def raise_for_failures(self) -> None:
        """``ERROR`` if anything failed (so Lambda retries the event), with the summary."""
        if self.failed:
            raise self.ERROR(f"{len(self.failed)} {self.UNDONE}: {self.failed[:5]}", self.as_dict())

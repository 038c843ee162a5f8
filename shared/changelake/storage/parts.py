"""One output file of a generation, uploaded as a multipart upload left open (invisible to every
reader until ``changelake.publication`` completes it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from changelake.publication import Output


@dataclass(frozen=True, slots=True)
class OpenPart:
    """One output file uploaded but not yet completed (invisible until ``complete_multipart``)."""

    key: str
    upload_id: str
    part_etags: tuple[str, ...]
    rows: int
    bytes: int
    uncompressed_bytes: int

    def to_json(self) -> dict[str, Any]:
        """The part as a manifest's ``outputs`` entry (``compaction.manifest.read_open_part`` reads it)."""
        return {
            **Output(self.key, self.upload_id, self.part_etags).document(),
            "rows": self.rows,
            "bytes": self.bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
        }

"""Quarantine: records that cannot be processed, kept whole with the reason, never dropped."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from changelake.integrations.s3 import S3Store
from changelake.layout import UNKNOWN_TABLE, quarantine_key


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One rejected input: ``record`` is the original input, as it arrived."""

    table: str
    day: date
    reason: str
    record: Any
    context: dict[str, str] = field(default_factory=dict)

    def line(self) -> bytes:
        # ensure_ascii keeps even invalid Unicode (lone surrogates) representable.
        document = {"reason": self.reason, "record": self.record, **self.context}
        return json.dumps(document, separators=(",", ":"), default=str).encode() + b"\n"


def group_by_folder(records: Sequence[QuarantinedRecord]) -> dict[tuple[str, date], list[QuarantinedRecord]]:
    """Records grouped by their quarantine folder (table, day), in input order."""
    groups: dict[tuple[str, date], list[QuarantinedRecord]] = defaultdict(list)
    for record in records:
        groups[(record.table or UNKNOWN_TABLE, record.day)].append(record)
    return groups


class QuarantineWriter:
    """Writes quarantined records as gzip JSON Lines, one object per folder per call.

    Delivery guarantee: at-least-once. Keys are derived from the content, so retrying the same
    records rewrites the same objects; ``write`` returns only after every object is stored and
    raises ``DeliveryError`` otherwise (the caller must then report the records as not stored).
    """

    def __init__(self, store: S3Store, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def write_folder(self, table: str, day: date, records: Sequence[QuarantinedRecord]) -> str:
        """Store ``records`` of one folder; returns the object key."""
        content = b"".join(record.line() for record in records)
        digest = hashlib.sha256(content).hexdigest()[:40]
        key = quarantine_key(self.prefix, table, day, digest)
        self.store.put(key, gzip.compress(content, mtime=0))
        return key

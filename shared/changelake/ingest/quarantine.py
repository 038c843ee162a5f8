"""Quarantine: records that cannot be processed, kept whole with the reason, never dropped.

Every line carries ``record_id``, a digest of the original record and where it came from (its
context, e.g. the SQS message ID; not the reason or the batch), so a poison record that is
redelivered or retried, and so written again in another object, is still one record to whoever
counts them, while two messages that happen to carry the same junk stay two.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from changelake.formats.layout import UNKNOWN_TABLE, quarantine_key
from changelake.integrations.base import ObjectStore


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One rejected input: ``record`` is the original input, as it arrived."""

    table: str
    day: date
    reason: str
    record: Any
    context: dict[str, str] = field(default_factory=dict)

    @classmethod
    def filed(
        cls,
        record: Any,
        reason: str,
        *,
        today: date,
        table: str | None = None,
        day: date | None = None,
        context: dict[str, str] | None = None,
    ) -> QuarantinedRecord:
        """A rejected input, filed as docs/contracts.md says: under its table and event day where they are
        readable, else under the reserved unknown-table folder and the processing day (``today``)."""
        return cls(table or UNKNOWN_TABLE, day or today, reason, record, dict(context or {}))

    @property
    def record_id(self) -> str:
        """The identity of the original record: equal records from the same source, equal ids,
        whatever batch they came in."""
        identity = [self.record, self.context]
        try:
            canonical = json.dumps(identity, separators=(",", ":"), sort_keys=True, default=str)
        except RecursionError:
            canonical = _text_without_recursion(identity)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def line(self) -> bytes:
        """The strict JSON line of this record; written for any record, whatever it holds.

        A record strict JSON cannot hold (``NaN`` or ``Infinity``, which DuckDB, Athena and Spark
        refuse) or json.dumps cannot write (nested past the recursion limit: input that json could
        only just read) is kept as its JSON text, a string, marked ``"record_format": "json-text"``.
        """
        document = {"reason": self.reason, "record_id": self.record_id, "record": self.record, **self.context}
        try:
            return _json_line(document)
        except (ValueError, RecursionError):
            return _json_line({**document, "record": _text_without_recursion(self.record), **_AS_TEXT})


#: Marks a quarantine line whose ``record`` is the original's JSON text rather than the original.
_AS_TEXT = {"record_format": "json-text"}


def _json_line(document: dict[str, Any]) -> bytes:
    # ensure_ascii keeps even invalid Unicode (lone surrogates) representable.
    return json.dumps(document, separators=(",", ":"), default=str, allow_nan=False).encode() + b"\n"


class _Encoded(str):
    """Text already encoded (a bracket, a separator, a key), as opposed to a value still to encode."""

    __slots__ = ()


def _text_without_recursion(value: Any) -> str:
    """Compact ``json.dumps(value, default=str)`` (``NaN`` written as Python does) on a stack of its
    own, so values nested past the recursion limit work. ``value`` is a tree (parsed input); a cycle
    would never end.
    """
    parts: list[str] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Encoded):
            parts.append(item)
            continue
        if isinstance(item, dict):
            tokens: list[Any] = [_Encoded("{")]
            for index, (key, member) in enumerate(item.items()):
                tokens += [_Encoded(("," if index else "") + json.dumps(str(key)) + ":"), member]
            tokens.append(_Encoded("}"))
        elif isinstance(item, list | tuple):
            tokens = [_Encoded("[")]
            for index, member in enumerate(item):
                tokens += [_Encoded(","), member] if index else [member]
            tokens.append(_Encoded("]"))
        else:
            parts.append(json.dumps(item, default=str))
            continue
        pending.extend(reversed(tokens))
    return "".join(parts)


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

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix

    def write_folder(self, table: str, day: date, records: Sequence[QuarantinedRecord]) -> str:
        """Store ``records`` of one folder (each distinct record once); returns the object key."""
        distinct = {record.record_id: record for record in records}
        content = b"".join(record.line() for record in distinct.values())
        digest = hashlib.sha256(content).hexdigest()[:40]
        key = quarantine_key(self.prefix, table, day, digest)
        self.store.put(key, gzip.compress(content, mtime=0))
        return key

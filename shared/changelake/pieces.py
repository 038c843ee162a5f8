"""Pieces: one generation of one folder built by parallel invocations, published by one commit.

A snapshot day of a large table is built in N buckets (the items whose keys hash to K,
``changelake.snapshot.buckets``), a compacted hour of a busy one in N slices (consecutive event-time
ranges). Each piece is an invocation of its own (a Step Functions Distributed Map runs them): it
writes its parts as multipart uploads left *open* (invisible, exactly as a single invocation leaves
them before its commit), then records them here, in ``<folder>_pieces/<generation>/`` (the
underscore: not data, readers skip it). The commit is a ``publication.Generation`` like any other:
its ``write`` writes nothing, it collects the records of the current generation, refuses when one
is missing or was built from other inputs (``CommitRefusedError``: nothing changed), and names the
pieces' uploads in one manifest; the promotion completes them. So a reader sees the folder of one
invocation (its files directly in the folder), in one step, and two overlapping commits leave one
generation, by the same protocol.

Why a record is enough: it is written after its piece's uploads, and names them with their part
ETags, so whoever holds it can complete them. A piece run again (a retry after a timeout) writes new
uploads at the same keys and replaces its record; the uploads it left behind are never completed
(the bucket lifecycle aborts them). The records go (``clear``) once their generation is published;
records of an older generation left by a commit that died are deleted by the next commit.

Delivery guarantee: a piece publishes nothing; a collected set holds each piece of the generation
exactly once, with uploads written from the generation's inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from changelake.exceptions import ChangelakeError, ObjectNotFoundError
from changelake.integrations.base import MultipartStore
from changelake.publication import Output

PIECES_FOLDER = "_pieces/"
#: The most pieces one folder is built in: part names carry the piece's index in four digits (so
#: that the names sort in piece order), and a Distributed Map's item list stays far below Step
#: Functions' 256 KiB payload limit (an item is under 100 bytes).
MAX_PIECES = 1000


class CommitRefusedError(ChangelakeError):
    """A commit of pieces was refused: a piece is missing, or was built from other inputs than the
    current ones. Nothing was changed; build the pieces again (the state machine plans again)."""


@dataclass(frozen=True, slots=True, order=True)
class Piece:
    """Piece ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PIECES:
            raise ValueError(f"a folder is built in 1 to {MAX_PIECES} pieces, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"piece {self.index} of {self.count} does not exist (0 <= piece < {self.count})")

    @property
    def name(self) -> str:
        """The piece in object names: sorts in piece order."""
        return f"{self.index:04d}-of-{self.count:04d}"


@dataclass(frozen=True, slots=True)
class PieceRecord:
    """What one piece wrote, left open: its data files (``outputs``), its side files (``side``, such
    as a snapshot day's removed keys), its counts and ``detail``, for the generation it was built from."""

    piece: Piece
    generation: str
    outputs: tuple[Output, ...]
    side: tuple[Output, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    #: What else the variant's commit needs of the piece (a JSON object: say, its files' sizes).
    detail: Mapping[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "piece": self.piece.index,
            "pieces": self.piece.count,
            "generation": self.generation,
            "outputs": [output.document() for output in self.outputs],
            "side": [output.document() for output in self.side],
            "counts": dict(self.counts),
            "detail": dict(self.detail),
        }

    @classmethod
    def from_body(cls, body: object) -> PieceRecord | None:
        """The record a body holds; None if it is not one (a record written by something else)."""
        if not isinstance(body, dict):
            return None
        try:
            return cls(
                Piece(int(body["piece"]), int(body["pieces"])),
                str(body["generation"]),
                _outputs(body["outputs"]),
                _outputs(body["side"]),
                _counts(body["counts"]),
                dict(body.get("detail", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _counts(document: dict[str, Any]) -> dict[str, int]:
    return {str(name): int(value) for name, value in document.items()}


def _outputs(entries: list[dict[str, Any]]) -> tuple[Output, ...]:
    return tuple(
        Output(str(entry["key"]), str(entry["upload_id"]), tuple(str(etag) for etag in entry["part_etags"]))
        for entry in entries
    )


class PieceRecords:
    """The records of the pieces of one folder (``<folder>_pieces/``)."""

    def __init__(self, store: MultipartStore, folder: str) -> None:
        if not folder.endswith("/"):
            raise ValueError(f"a folder ends with '/': {folder!r}")
        self.store = store
        self.folder = folder
        self.prefix = folder + PIECES_FOLDER

    def key(self, generation: str, piece: Piece) -> str:
        return f"{self.prefix}{generation}/{piece.name}.json"

    def put(self, record: PieceRecord) -> str:
        """Record a piece, once its uploads are written (a rerun of the piece replaces its record)."""
        key = self.key(record.generation, record.piece)
        self.store.put(key, json.dumps(record.body(), indent=1).encode(), content_type="application/json")
        return key

    def collect(self, generation: str, count: int) -> tuple[PieceRecord, ...]:
        """Every piece of ``generation`` built in ``count`` pieces, in piece order.

        ``CommitRefusedError`` naming what is missing, and what was found instead (pieces of other
        generations: built from other inputs), when one of the ``count`` pieces has no record.
        """
        found: dict[int, PieceRecord] = {}
        others: set[str] = set()
        for item in self.store.list_objects(self.prefix):
            record = self._read(item.key)
            if record is None:
                continue
            if record.generation == generation and record.piece.count == count:
                found[record.piece.index] = record
            else:
                others.add(f"{record.generation} in {record.piece.count}")
        missing = [index for index in range(count) if index not in found]
        if missing:
            raise CommitRefusedError(self._refusal(generation, count, missing, others))
        return tuple(found[index] for index in range(count))

    def _read(self, key: str) -> PieceRecord | None:
        try:
            body = json.loads(self.store.get(key))
        except ObjectNotFoundError:  # cleared meanwhile by a commit of the same folder
            return None
        except ValueError:
            return None
        return PieceRecord.from_body(body)

    def _refusal(self, generation: str, count: int, missing: list[int], others: set[str]) -> str:
        shown = ", ".join(str(index) for index in missing[:10]) + (", ..." if len(missing) > 10 else "")
        text = (
            f"s3://{self.store.bucket}/{self.folder}: {len(missing)} of {count} pieces of generation "
            f"{generation} are missing (piece {shown}); nothing was published"
        )
        if others:
            text += f"; found pieces built from other inputs: generation {', '.join(sorted(others))}"
        return text

    def clear(self) -> int:
        """Delete every record of the folder (after its generation was published); how many."""
        keys = [item.key for item in self.store.list_objects(self.prefix)]
        for key in keys:
            self.store.delete(key)
        return len(keys)

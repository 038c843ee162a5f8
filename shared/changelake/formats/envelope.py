"""The SQS message body: many change record lines, gzip-compressed, in a small JSON envelope.

Two kinds of body, both JSON objects with a version ``v``:

* ``{"v": 1, "kind": "batch", "count": N, "data": "<base64 of gzip of N JSON lines>"}``
* ``{"v": 1, "kind": "claim", "count": 1, "key": "claims/..", "sha256": ".."}``: a claim check
  for one record too large for a message; the gzip JSON line lives in the bucket under ``key``.

Packing is streaming: lines are compressed as they arrive and a message is closed when the next
line would take its body past the limit, so one pass fills messages close to the limit.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from changelake.exceptions import EnvelopeError
from changelake.formats.strict_json import loads_document, rejecting

VERSION = 1
#: zlib level for message bodies. ``python -m bench.studies.levels`` (20,000 ~1.3 KB lines, 256 KB bodies):
#: level 1 packs 852 records per message at 7.7 us/record, 5: 1,030 at 14.1 us, 6: 1,080 at 20.9 us,
#: 9: 1,106 at 35 us. SQS bills every send, receive and delete per message (64 KB units), so SQS +
#: packing CPU per million changes is $0.00230 at 1, $0.00195 at 5, $0.00192 at 6 (the minimum) and
#: $0.00197 at 9; 6 also means fewer aggregator messages. Level 5 would cut the consumer's CPU by ~5%
#: for 5% more messages: not worth it while the consumer keeps up.
COMPRESSION_LEVEL = 6
#: Room left in every body for message attributes added later (redrive adds a counter).
ATTRIBUTE_RESERVE_BYTES = 512
_GZIP = 31  # zlib wbits for a gzip container
_FINISH_BYTES = 32  # final empty block + gzip trailer, with margin
_HEADER_BYTES = 32  # gzip header, not emitted until the first output
#: A body or claim never inflates past this; a larger one is a decompression bomb, not our data.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PackedMessage:
    """One SQS body holding ``count`` records, the first of which is input record ``first_index``."""

    body: str
    count: int
    first_index: int


@dataclass(frozen=True, slots=True)
class OversizedRecord:
    """A record whose line alone would not fit in a message; it must travel as a claim check."""

    line: bytes
    first_index: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A decoded claim-check body."""

    key: str
    sha256: str
    count: int


def _envelope_overhead(count_digits: int = 10) -> int:
    return len('{"v":1,"kind":"batch","count":,"data":""}') + count_digits


def _deflate_bound(raw_bytes: int) -> int:
    # zlib's deflateBound: the most a stored (incompressible) block can take.
    return raw_bytes + (raw_bytes >> 12) + (raw_bytes >> 14) + 13


class _OpenMessage:
    __slots__ = ("chunks", "compressor", "count", "emitted", "first_index", "unflushed")

    def __init__(self, first_index: int) -> None:
        self.compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, _GZIP)
        self.chunks: list[bytes] = []
        self.emitted = 0
        self.unflushed = 0
        self.count = 0
        self.first_index = first_index

    def try_add(self, line: bytes, budget: int) -> bool:
        """Add ``line`` if the finished gzip would still fit in ``budget`` bytes."""
        worst = self.emitted + _deflate_bound(self.unflushed + len(line)) + _HEADER_BYTES + _FINISH_BYTES
        if worst <= budget:
            out = self.compressor.compress(line)
            self.chunks.append(out)
            self.emitted += len(out)
            self.unflushed += len(line)
            self.count += 1
            return True
        # Near the limit: measure exactly, on a copy, so a refusal leaves this message intact.
        trial = self.compressor.copy()
        out = trial.compress(line) + trial.flush(zlib.Z_SYNC_FLUSH)
        if self.emitted + len(out) + _FINISH_BYTES > budget:
            return False
        self.compressor = trial
        self.chunks.append(out)
        self.emitted += len(out)
        self.unflushed = 0
        self.count += 1
        return True

    def close(self) -> PackedMessage:
        self.chunks.append(self.compressor.flush())
        data = base64.b64encode(b"".join(self.chunks)).decode("ascii")
        body = '{"v":1,"kind":"batch","count":' + str(self.count) + ',"data":"' + data + '"}'
        return PackedMessage(body, self.count, self.first_index)


class MessagePacker:
    """Packs change record lines, in order, into as few bodies of at most ``max_body_bytes`` as it can."""

    def __init__(self, max_body_bytes: int) -> None:
        usable = max_body_bytes - ATTRIBUTE_RESERVE_BYTES - _envelope_overhead()
        if usable < 64:
            raise ValueError(f"max_body_bytes {max_body_bytes} leaves no room for data")
        self.max_body_bytes = max_body_bytes
        self._budget = usable // 4 * 3  # base64 turns 3 bytes into 4
        self._open: _OpenMessage | None = None

    def add(self, line: bytes, index: int) -> Iterator[PackedMessage | OversizedRecord]:
        """Add input record ``index``; yields the messages (or oversized records) this closes."""
        data = line + b"\n"
        if self._open is not None:
            if self._open.try_add(data, self._budget):
                return
            yield self._open.close()
            self._open = None
        fresh = _OpenMessage(index)
        if fresh.try_add(data, self._budget):
            self._open = fresh
        else:
            yield OversizedRecord(data, index)

    def finish(self) -> Iterator[PackedMessage]:
        """Close the open message, if any."""
        if self._open is not None:
            yield self._open.close()
            self._open = None

    def pack(self, lines: Iterable[tuple[int, bytes]]) -> Iterator[PackedMessage | OversizedRecord]:
        """All of ``lines`` (``(index, line)`` pairs), then the last message."""
        for index, line in lines:
            yield from self.add(line, index)
        yield from self.finish()


def claim_payload(line: bytes) -> tuple[bytes, str]:
    """The gzip object stored for an oversized record, and its SHA-256 (which names it)."""
    digest = hashlib.sha256(line).hexdigest()
    return gzip.compress(line, compresslevel=COMPRESSION_LEVEL, mtime=0), digest


def claim_body(key: str, sha256: str) -> str:
    """The SQS body that points at a claim-check object."""
    return json.dumps({"v": VERSION, "kind": "claim", "count": 1, "key": key, "sha256": sha256})


def decode_body(body: object) -> list[bytes] | Claim:
    """The record lines of a batch body, or the ``Claim`` of a claim-check body.

    Raises ``EnvelopeError`` for anything that is not a well-formed changelake body.
    """
    if type(body) is not str:
        raise EnvelopeError("message body is not a string")
    envelope: Any = loads_document(body, "message body is not JSON", EnvelopeError)
    if type(envelope) is not dict or type(envelope.get("v")) is not int or envelope["v"] != VERSION:
        raise EnvelopeError(f"message body is not a changelake v{VERSION} envelope")
    kind, count = envelope.get("kind"), envelope.get("count")
    if type(count) is not int or count < 1:
        raise EnvelopeError("envelope count must be a positive integer")
    if kind == "claim":
        key, sha256 = envelope.get("key"), envelope.get("sha256")
        if type(key) is not str or type(sha256) is not str or not key or len(sha256) != 64:
            raise EnvelopeError("claim envelope needs key and sha256")
        return Claim(key, sha256, count)
    if kind != "batch" or type(envelope.get("data")) is not str:
        raise EnvelopeError(f"unknown envelope kind {str(kind)[:32]!r}")
    with rejecting("envelope data is not base64", EnvelopeError):
        compressed = base64.b64decode(envelope["data"], validate=True)
    lines = _split_lines(_gunzip(compressed, "envelope data"))
    if len(lines) != count:
        raise EnvelopeError(f"envelope says {count} records but holds {len(lines)}")
    return lines


def _gunzip(compressed: bytes, what: str) -> bytes:
    decompressor = zlib.decompressobj(_GZIP)
    with rejecting(f"{what} is not gzip", EnvelopeError):
        data = decompressor.decompress(compressed, MAX_DECOMPRESSED_BYTES)
    if decompressor.unconsumed_tail:
        raise EnvelopeError(f"{what} inflates past {MAX_DECOMPRESSED_BYTES} bytes")
    if not decompressor.eof:
        raise EnvelopeError(f"{what} is a truncated gzip stream")
    return data


def _split_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines


def decode_claim_object(payload: bytes, claim: Claim) -> list[bytes]:
    """The record lines of a fetched claim-check object, verified against its digest."""
    data = _gunzip(payload, f"claim {claim.key}")
    if hashlib.sha256(data).hexdigest() != claim.sha256:
        raise EnvelopeError(f"claim {claim.key} does not match its sha256")
    lines = _split_lines(data)
    if len(lines) != claim.count:
        raise EnvelopeError(f"claim {claim.key} holds {len(lines)} records, not {claim.count}")
    return lines

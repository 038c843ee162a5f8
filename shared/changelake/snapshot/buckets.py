"""Buckets: a snapshot day of a large table built by N parallel invocations, one per bucket.

Bucket K of N holds the items whose canonical key (the text the snapshot is sorted by,
``changelake.snapshot.lines``: ``base_key`` of a snapshot line, the key of a change) hashes to K::

    bucket = int.from_bytes(sha256(key.encode("utf-8")).digest()[:8], "big") % N

(the first 8 bytes of the SHA-256 of the key's UTF-8 text, as an unsigned big-endian integer, modulo
N; docs/snapshot.md shows it in a few lines of Python, to reproduce it). Buckets partition the keys,
and an item's state on day D depends only on its own lines of day D-1 and its own changes of day D,
so the union of the N buckets' lines is exactly the day one invocation writes.

A day built in N buckets is published as one generation (``changelake.pieces``): its files are
those of the N buckets in bucket order, each bucket's sorted by key. So the day is sorted by key
within a bucket, not across buckets; its manifest says so (``buckets``, and each output's
``piece``), and whatever reads it as a base merges the N sorted streams (``SortedFiles``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from changelake.pieces import CommitRefusedError, Piece

#: The most buckets a day is built in: the largest power of two within ``MAX_PIECES``.
MAX_BUCKETS = 512
#: Bytes of the digest that make the bucket's integer: 64 bits leave no measurable skew for any
#: N up to ``changelake.pieces.MAX_PIECES``.
_HASH_BYTES = 8


def bucket_of(key: str, count: int) -> int:
    """The bucket of the item with canonical key ``key`` among ``count`` buckets (see the module)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:_HASH_BYTES], "big") % count


class BaseNotCurrentError(CommitRefusedError):
    """A bucket of day D was asked for while day D-1 (its base) is missing or not current for its
    inputs: the buckets of D build on D-1 as published, so the days are planned again in order."""


@dataclass(frozen=True, slots=True)
class SortedFiles:
    """Files whose lines are read in key order: ``streams`` of files, each sorted by key across its
    files (one stream for a day built in one invocation, one per bucket for a day built in buckets,
    merged by key when read), and the bucket to keep (None: every line)."""

    streams: tuple[tuple[str, ...], ...]
    keep: Piece | None = None

    @classmethod
    def of(
        cls, keys: Sequence[str], buckets: int | None, file_buckets: Sequence[int], keep: Piece | None
    ) -> SortedFiles:
        """The files ``keys`` of a day built in ``buckets`` (None: one invocation; then
        ``file_buckets`` is ignored, else it gives each file's bucket) as read by bucket ``keep``
        (None: a single invocation, every line).

        Since ``hash % M == K`` implies ``hash % N == K % N`` whenever N divides M, a bucket reads
        only the files it can need: its own bucket's when the counts are equal; bucket ``K % N``'s,
        keeping its own keys, when N (the day before's count) divides M (its own); the buckets
        ``j`` with ``j % M == K``, all of whose keys are its own, when M divides N; otherwise every
        file, keeping its own keys."""
        if keep is not None and keep.count == 1:  # the one bucket holds every key: nothing to hash
            keep = None
        if buckets is None:
            return cls((tuple(keys),) if keys else (), keep)
        streams: list[list[str]] = [[] for _ in range(buckets)]
        for key, bucket in zip(keys, file_buckets, strict=True):
            streams[bucket].append(key)
        chosen = range(buckets)
        if keep is not None and keep.count % buckets == 0:
            chosen = range(keep.index % buckets, keep.index % buckets + 1)
            keep = None if keep.count == buckets else keep
        elif keep is not None and buckets % keep.count == 0:
            chosen = range(keep.index, buckets, keep.count)
            keep = None
        return cls(tuple(tuple(streams[index]) for index in chosen if streams[index]), keep)


def bucket_count(pieces: int) -> int:
    """The buckets a day is built in when ``changelake.fan_out`` asks for ``pieces``: the next power
    of two, at most ``MAX_BUCKETS``. A growing table's count then changes only by doubling, so each
    bucket reads one bucket of the day before (``SortedFiles.of``), never the whole day: with any
    other change of count, each of N buckets would decompress the whole of the day before."""
    return min(1 << (pieces - 1).bit_length(), MAX_BUCKETS)

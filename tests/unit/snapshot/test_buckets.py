"""Buckets: the hash of a key, the count of buckets, and which files of the day before a bucket reads."""

from __future__ import annotations

import hashlib

import pytest

from changelake.pieces import Piece
from changelake.snapshot.buckets import MAX_BUCKETS, SortedFiles, bucket_count, bucket_of

#: Eight files of a day built in 4 buckets: two per bucket, in bucket order.
FILES = tuple(f"part-{bucket}-{n}" for bucket in range(4) for n in range(2))
FILE_BUCKETS = tuple(bucket for bucket in range(4) for _ in range(2))


def test_the_bucket_of_a_key_is_the_documented_hash() -> None:
    # GIVEN a canonical key WHEN its bucket is taken THEN it is sha256's first 8 bytes, big-endian, mod N
    key = '{"pk":"customer#00000042","sk":"order#7"}'
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    assert [bucket_of(key, count) for count in (1, 4, 7)] == [0, digest % 4, digest % 7]


def test_a_doubled_count_splits_each_bucket_in_two() -> None:
    # GIVEN keys WHEN bucketed in N and 2N THEN bucket K of 2N lies in bucket K mod N of N
    keys = [f'{{"pk":"item-{n}"}}' for n in range(500)]
    assert all(bucket_of(key, 8) % 4 == bucket_of(key, 4) for key in keys)


@pytest.mark.parametrize(
    ("pieces", "buckets"), [(1, 1), (2, 2), (3, 4), (5, 8), (300, 512), (512, 512), (1000, MAX_BUCKETS)]
)
def test_the_count_of_buckets_is_a_power_of_two(pieces: int, buckets: int) -> None:
    assert bucket_count(pieces) == buckets


@pytest.mark.parametrize(
    ("keep", "streams", "filtered"),
    [
        (None, [FILES[0:2], FILES[2:4], FILES[4:6], FILES[6:8]], False),  # one invocation: all, merged
        (Piece(2, 4), [FILES[4:6]], False),  # the same count: its own files
        (Piece(5, 8), [FILES[2:4]], True),  # twice the count: bucket 5 % 4, keeping its keys
        (Piece(1, 2), [FILES[2:4], FILES[6:8]], False),  # half the count: buckets 1 and 3, every key
        (Piece(1, 3), [FILES[0:2], FILES[2:4], FILES[4:6], FILES[6:8]], True),  # another: all, filtered
        (Piece(0, 1), [FILES[0:2], FILES[2:4], FILES[4:6], FILES[6:8]], False),  # one bucket: every key
    ],
)
def test_a_bucket_reads_only_the_buckets_of_the_day_before_it_can_need(
    keep: Piece | None, streams: list[tuple[str, ...]], filtered: bool
) -> None:
    # GIVEN a day built in 4 buckets WHEN read by a bucket (or one invocation)
    files = SortedFiles.of(FILES, 4, FILE_BUCKETS, keep)
    # THEN it reads the streams it can need, and filters keys only where they are not all its own
    assert (list(files.streams), files.keep is not None) == (streams, filtered)


def test_a_day_built_in_one_invocation_is_one_stream() -> None:
    # GIVEN a day built in one invocation WHEN read by a bucket THEN one stream, the bucket's keys kept
    files = SortedFiles.of(FILES, None, (), Piece(1, 4))
    assert (files.streams, files.keep) == ((FILES,), Piece(1, 4))

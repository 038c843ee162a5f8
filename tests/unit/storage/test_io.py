"""Reading gzip JSON Lines a chunk at a time (storage.io)."""

from __future__ import annotations

import gzip
import io

import pytest

from changelake.exceptions import UnreadableInputError
from changelake.storage.io import iter_gzip_lines


def test_gzip_lines_are_read_across_chunks_and_members() -> None:
    # GIVEN two gzip members (as concatenated files are) with long and empty lines
    lines = [b"x" * 5000, b"short", b"", b"y" * 70_000]
    body = gzip.compress(b"\n".join(lines[:2]) + b"\n") + gzip.compress(b"\n".join(lines[2:]))
    # WHEN read in 100-byte chunks
    out = list(iter_gzip_lines(io.BytesIO(body), resource="r", chunk_bytes=100))
    # THEN every non-empty line comes back whole
    assert out == [lines[0], lines[1], lines[3]]


@pytest.mark.parametrize(
    "body", [gzip.compress(b"a\nb\n")[:-6], b"not gzip at all"], ids=["truncated", "garbage"]
)
def test_gzip_lines_refuse_a_broken_stream(body: bytes) -> None:
    with pytest.raises(UnreadableInputError):
        list(iter_gzip_lines(io.BytesIO(body), resource="r"))

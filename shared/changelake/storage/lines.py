"""Reading gzip JSON Lines a chunk at a time (pure: no AWS, so compaction's checking process stays
small; ``changelake.storage.io`` adds S3)."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator

from changelake.exceptions import UnreadableInputError

#: Compressed bytes read per step while decompressing a raw object.
READ_CHUNK_BYTES = 256 * 1024
_GZIP_WBITS = 31  # zlib's gzip container


def gzip_chunks(
    read: Callable[[int], bytes], *, resource: str, chunk_bytes: int = READ_CHUNK_BYTES
) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (one or more members) read with ``read``, a chunk at a time."""
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    pending = False  # inside a gzip member that has not ended yet
    while True:
        compressed = read(chunk_bytes)
        if not compressed:
            break
        while compressed:
            try:
                data = decompressor.decompress(compressed)
            except zlib.error as exc:
                raise UnreadableInputError(f"{resource}: not valid gzip ({exc})") from exc
            pending = not decompressor.eof
            if decompressor.eof:
                compressed = decompressor.unused_data
                decompressor = zlib.decompressobj(_GZIP_WBITS)
            else:
                compressed = b""
            if data:
                yield data
    if pending:
        raise UnreadableInputError(f"{resource}: gzip stream is truncated")


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty lines (without newline) of a stream of byte chunks."""
    tail = b""
    for data in chunks:
        lines = (tail + data).split(b"\n")
        tail = lines.pop()
        yield from filter(None, lines)
    if tail:
        yield tail

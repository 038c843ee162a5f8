"""Streaming I/O: gzip JSON Lines in from S3, gzip parts out as multipart uploads.

Memory stays flat: objects are decompressed a chunk at a time, and output is compressed and
uploaded in 8 MiB multipart parts by a background thread (zlib releases the GIL, so compression
overlaps the merge on a second core). The uploads are *left open*: an open multipart upload is
invisible to every reader, so nothing is published until its writer commits a manifest and then
completes the uploads (``changelake.publication``).
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from changelake.exceptions import map_client_error
from changelake.formats.change_line import escape_line_break_bytes
from changelake.integrations.base import MultipartStore, ObjectStore
from changelake.storage.lines import READ_CHUNK_BYTES, gzip_chunks, split_lines
from changelake.storage.parts import OpenPart

#: Uncompressed bytes handed to the compression thread at once (always whole lines).
WRITE_CHUNK_BYTES = 1024 * 1024
#: Multipart part size (S3's minimum for all but the last part is 5 MiB).
UPLOAD_PART_BYTES = 8 * 1024 * 1024
#: gzip level of compacted/ parts: written once, read many times, so the standard level.
COMPACTED_COMPRESSION_LEVEL = 6
_GZIP_WBITS = 31  # zlib's gzip container: header with mtime 0, so equal input gives equal bytes
__all__ = ["READ_CHUNK_BYTES", "PartsWriter", "Prefetcher", "iter_gzip_lines", "split_lines"]


def iter_gzip_lines(body: Any, *, resource: str, chunk_bytes: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    """The non-empty lines (without newline) of a gzip stream (one or more members) read from ``body``."""
    return split_lines(gzip_chunks(_reader(body, resource), resource=resource, chunk_bytes=chunk_bytes))


def _reader(body: Any, resource: str) -> Callable[[int], bytes]:
    """``body.read`` with S3 errors mapped to changelake's."""

    def read(size: int) -> bytes:
        try:
            data: bytes = body.read(size)
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, resource=resource) from exc
        return data

    return read


class Prefetcher:
    """Opens and decompresses objects in order on a background thread, ahead of their reader.

    S3 reads and zlib release the GIL, so both overlap the parsing on a second core. At most
    ``depth`` decompressed chunks wait in memory. An error of the thread (a mapped S3 error, a
    ``UnreadableInputError`` for bad gzip) is raised by the reader at the same point of the stream
    as reading inline would raise it. Use as a context manager (the thread is stopped on exit).
    """

    def __init__(
        self,
        store: ObjectStore,
        keys: Sequence[str],
        *,
        copy_to: CopySink | None = None,
        chunk_bytes: int = READ_CHUNK_BYTES,
        depth: int = 4,
    ) -> None:
        """``copy_to`` also gets each object's compressed bytes, one scratch file per object."""
        self.store = store
        self.copy_to = copy_to
        self.keys = list(keys)
        self.chunk_bytes = chunk_bytes
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="compaction-prefetch", daemon=True)
        self._thread.start()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunks(self) -> Iterator[Iterator[bytes]]:
        """For each key in order, an iterator over its decompressed chunks (consume each fully)."""
        for _ in self.keys:
            yield self._object_chunks()

    def _object_chunks(self) -> Iterator[bytes]:
        while (item := self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop the thread (it notices within 0.1 s of its next chunk) and wait for it."""
        self._stop.set()
        self._thread.join()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _work(self) -> None:
        for key in self.keys:
            try:
                self._read_object(key)
            except _Stopped:
                return
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
                self._put(exc)
                return
            if not self._put(None):
                return

    def _read_object(self, key: str) -> None:
        body = self.store.open(key)
        copy = self.copy_to.new_file() if self.copy_to is not None else None
        try:
            source = body if copy is None else _Tee(body, copy[1])
            resource = f"s3://{self.store.bucket}/{key}"
            chunks = gzip_chunks(_reader(source, resource), resource=resource, chunk_bytes=self.chunk_bytes)
            for data in chunks:
                if not self._put(data):
                    raise _Stopped
        finally:
            body.close()
            if copy is not None:
                copy[1].close()
        if copy is not None and self.copy_to is not None:
            self.copy_to.finished(copy[0])


class CopySink(Protocol):
    """Where ``Prefetcher`` copies compressed objects (see ``changelake.compaction.check.FullCheck``)."""

    def new_file(self) -> tuple[Path, IO[bytes]]: ...

    def finished(self, path: Path) -> None: ...


class _Stopped(Exception):
    """The reader closed the prefetcher."""


class _Tee:
    """A body whose reads are also written to ``file``."""

    def __init__(self, body: Any, file: IO[bytes]) -> None:
        self.body = body
        self.file = file

    def read(self, size: int) -> bytes:
        data: bytes = self.body.read(size)
        self.file.write(data)
        return data


class PartsWriter:
    """Writes sorted lines as gzip parts of about ``target_bytes`` (compressed) each.

    A part is closed after the first write chunk that takes it to ``target_bytes``, so files are
    split only past the target and the split points depend only on the data. Use ``close`` to get
    the open parts, or ``abort`` to discard every upload started (also after ``close``).
    """

    def __init__(
        self,
        store: MultipartStore,
        key_of: Callable[[int], str],
        *,
        target_bytes: int,
        level: int = COMPACTED_COMPRESSION_LEVEL,
        upload_part_bytes: int = UPLOAD_PART_BYTES,
        chunk_bytes: int = WRITE_CHUNK_BYTES,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.key_of = key_of
        self.target_bytes = target_bytes
        self.level = level
        self.upload_part_bytes = upload_part_bytes
        self.chunk_bytes = chunk_bytes
        self.metadata = metadata
        self.parts: list[OpenPart] = []
        self._started: list[tuple[str, str]] = []  # (key, upload_id) of every upload created
        self._lines: list[bytes] = []
        self._line_bytes = 0
        self._rows = 0
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="compaction-parts", daemon=True)
        self._thread.start()
        self._closed = False

    def write(self, line: bytes) -> None:
        """Append one line (without newline)."""
        self._lines.append(line)
        self._line_bytes += len(line) + 1
        if self._line_bytes >= self.chunk_bytes:
            self._hand_over()

    def _hand_over(self) -> None:
        if self._error is not None:
            raise self._error
        if self._lines:
            # Lines of raw/ files written before change lines escaped U+2028/U+2029 get it here:
            # one search per 1 MiB chunk, so every compacted line is one line to str.splitlines.
            data = escape_line_break_bytes(b"\n".join(self._lines) + b"\n")
            self._queue.put((data, len(self._lines)))
            self._lines, self._line_bytes = [], 0

    def close(self) -> list[OpenPart]:
        """Finish the last part; returns every part, uploaded and still open."""
        self._hand_over()
        self._finish_thread()
        if self._error is not None:
            raise self._error
        return list(self.parts)

    def abort(self) -> None:
        """Discard every upload this writer started (best effort: the bucket lifecycle aborts the rest)."""
        self._finish_thread()
        for key, upload_id in self._started:
            self.store.abort_multipart(key, upload_id)

    def _finish_thread(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()

    def _work(self) -> None:
        state: _PartState | None = None
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain, so the producer never blocks
            try:
                data, rows = item
                if state is None:
                    key = self.key_of(len(self.parts))
                    upload_id = self.store.create_multipart(key, metadata=self.metadata)
                    self._started.append((key, upload_id))
                    state = _PartState(
                        key, upload_id, zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
                    )
                state.rows += rows
                state.uncompressed += len(data)
                state.buffer += state.compressor.compress(data)
                if len(state.buffer) >= self.upload_part_bytes:
                    self._upload(state)
                if state.size >= self.target_bytes:
                    self._finish(state)
                    state = None
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread, which raises it
                self._error = exc
        if state is not None and self._error is None:
            try:
                self._finish(state)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread, which raises it
                self._error = exc

    def _upload(self, state: _PartState) -> None:
        body = bytes(state.buffer)
        state.buffer.clear()
        state.etags.append(self.store.upload_part(state.key, state.upload_id, len(state.etags) + 1, body))
        state.uploaded += len(body)

    def _finish(self, state: _PartState) -> None:
        state.buffer += state.compressor.flush()
        self._upload(state)
        self.parts.append(
            OpenPart(
                state.key, state.upload_id, tuple(state.etags), state.rows, state.uploaded, state.uncompressed
            )
        )


class _PartState:
    __slots__ = ("buffer", "compressor", "etags", "key", "rows", "uncompressed", "upload_id", "uploaded")

    def __init__(self, key: str, upload_id: str, compressor: Any) -> None:
        self.key = key
        self.upload_id = upload_id
        self.compressor = compressor
        self.buffer = bytearray()
        self.etags: list[str] = []
        self.rows = 0
        self.uploaded = 0
        self.uncompressed = 0

    @property
    def size(self) -> int:
        return self.uploaded + len(self.buffer)

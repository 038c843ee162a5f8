"""An S3 client held in memory: the requests ``S3Store`` makes, with S3's answers, a thousand times faster
than a moto server (for tests that replay hundreds of interleavings of a protocol).

What it keeps of S3: strong read-after-write consistency, ETags (MD5 of a PUT's body; for a completed
multipart upload the MD5 of its parts' MD5s and ``-<parts>``), conditional PUTs (``If-None-Match: *``
refused with 412 if the key exists; ``If-Match`` refused with 412 on another ETag and 404 if the key is
missing), open multipart uploads invisible until completed, ``NoSuchUpload`` for a completed or aborted
upload, deletes of missing keys succeeding, listings in key order with prefixes and delimiters.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.functional.fakes import client_error


@dataclass
class _Upload:
    key: str
    parts: dict[int, bytes] = field(default_factory=dict)


def _etag(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


class InMemoryS3:
    """One or more buckets' objects in a dict; thread-safe."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}  # "bucket/key" -> (body, etag)
        self.uploads: dict[str, _Upload] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            current = self.objects.get(f"{Bucket}/{Key}")
            if kwargs.get("IfNoneMatch") == "*" and current is not None:
                raise client_error("PreconditionFailed", "PutObject", status=412)
            if "IfMatch" in kwargs:
                if current is None:
                    raise client_error("NoSuchKey", "PutObject", status=404)
                if current[1] != kwargs["IfMatch"]:
                    raise client_error("PreconditionFailed", "PutObject", status=412)
            etag = _etag(Body)
            self.objects[f"{Bucket}/{Key}"] = (bytes(Body), etag)
            return {"ETag": etag}

    def _object(self, bucket: str, key: str, operation: str, code: str) -> tuple[bytes, str]:
        found = self.objects.get(f"{bucket}/{key}")
        if found is None:
            raise client_error(code, operation, status=404)
        return found

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        with self._lock:
            body, etag = self._object(Bucket, Key, "GetObject", "NoSuchKey")
        return {"Body": io.BytesIO(body), "ETag": etag, "ContentLength": len(body)}

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        with self._lock:
            body, etag = self._object(Bucket, Key, "HeadObject", "404")
        return {"ETag": etag, "ContentLength": len(body)}

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        with self._lock:
            self.objects.pop(f"{Bucket}/{Key}", None)
        return {}

    def list_objects_v2(
        self, *, Bucket: str, Prefix: str = "", Delimiter: str = "", **_: Any
    ) -> dict[str, Any]:
        with self._lock:
            keys = sorted(name[len(Bucket) + 1 :] for name in self.objects if name.startswith(f"{Bucket}/"))
            contents, folders = [], []
            for key in keys:
                if not key.startswith(Prefix):
                    continue
                rest = key[len(Prefix) :]
                if Delimiter and Delimiter in rest:
                    folder = Prefix + rest.split(Delimiter, 1)[0] + Delimiter
                    if folder not in folders:
                        folders.append(folder)
                    continue
                body, etag = self.objects[f"{Bucket}/{key}"]
                contents.append({"Key": key, "ETag": etag, "Size": len(body)})
        response: dict[str, Any] = {"IsTruncated": False, "Contents": contents}
        if Delimiter:
            response["CommonPrefixes"] = [{"Prefix": folder} for folder in folders]
        return response

    def get_paginator(self, operation: str) -> Any:
        assert operation == "list_objects_v2"
        client = self

        class _Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                yield client.list_objects_v2(**kwargs)

        return _Paginator()

    def create_multipart_upload(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        with self._lock:
            upload_id = f"upload-{next(self._ids)}"
            self.uploads[upload_id] = _Upload(f"{Bucket}/{Key}")
        return {"UploadId": upload_id}

    def _upload(self, bucket: str, key: str, upload_id: str, operation: str) -> _Upload:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != f"{bucket}/{key}":
            raise client_error("NoSuchUpload", operation, status=404)
        return upload

    def upload_part(
        self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes
    ) -> dict[str, Any]:
        with self._lock:
            self._upload(Bucket, Key, UploadId, "UploadPart").parts[PartNumber] = bytes(Body)
        return {"ETag": _etag(Body)}

    def complete_multipart_upload(
        self, *, Bucket: str, Key: str, UploadId: str, MultipartUpload: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        with self._lock:
            upload = self._upload(Bucket, Key, UploadId, "CompleteMultipartUpload")
            numbers = [part["PartNumber"] for part in MultipartUpload["Parts"]]
            if any(
                _etag(upload.parts.get(n, b"")) != part["ETag"]
                for n, part in zip(numbers, MultipartUpload["Parts"], strict=True)
            ):
                raise client_error("InvalidPart", "CompleteMultipartUpload", status=400)
            body = b"".join(upload.parts[n] for n in numbers)
            digests = b"".join(bytes.fromhex(_etag(upload.parts[n])[1:-1]) for n in numbers)
            etag = f'"{hashlib.md5(digests).hexdigest()}-{len(numbers)}"'
            self.objects[upload.key] = (body, etag)
            del self.uploads[UploadId]
        return {"ETag": etag}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        with self._lock:
            self._upload(Bucket, Key, UploadId, "AbortMultipartUpload")
            del self.uploads[UploadId]
        return {}

"""S3: whole-object reads and writes, conditional writes, listings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from changelake.exceptions import map_client_error
from changelake.integrations.base import GZIP_CONTENT_TYPE, AwsAdapter, ObjectInfo


class S3Store(AwsAdapter):
    """One bucket (a ``MultipartStore``).

    Delivery guarantee of ``put``: a returned ETag means the object is durably stored under that
    key; any failure raises a ``DeliveryError`` and nothing is reported stored. Conditional puts
    (``if_none_match``, ``if_match``) are atomic compare-and-set on the key.
    """

    service = "s3"

    def __init__(self, bucket: str, *, client: Any = None) -> None:
        super().__init__(client=client)
        self.bucket = bucket

    def _call(self, operation: str, key: str = "", **kwargs: Any) -> Any:
        return self._request(operation, f"s3://{self.bucket}/{key}", Bucket=self.bucket, **kwargs)

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = GZIP_CONTENT_TYPE,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str:
        """Store ``body`` under ``key``; returns its ETag.

        ``if_none_match`` writes only if no object exists, ``if_match`` only if the current ETag
        is that one; a lost condition raises ``PreconditionFailedError``.
        """
        kwargs: dict[str, Any] = {"Key": key, "Body": body, "ContentType": content_type}
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        if metadata:
            kwargs["Metadata"] = metadata
        return str(self._call("put_object", key, **kwargs)["ETag"])

    def get(self, key: str) -> bytes:
        """The whole object; ``ObjectNotFoundError`` if it is missing."""
        response = self._call("get_object", key, Key=key)
        try:
            return bytes(response["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, resource=f"s3://{self.bucket}/{key}") from exc

    def get_with_etag(self, key: str) -> tuple[bytes, str]:
        """The whole object and its ETag, read in one request."""
        response = self._call("get_object", key, Key=key)
        try:
            return bytes(response["Body"].read()), str(response["ETag"])
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, resource=f"s3://{self.bucket}/{key}") from exc

    def open(self, key: str) -> Any:
        """A streaming body for ``key`` (read it in chunks to keep memory flat)."""
        return self._call("get_object", key, Key=key)["Body"]

    def list_pages(self, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every ListObjectsV2 response page under ``prefix`` (``kwargs``: Delimiter, ...)."""
        token: str | None = None
        while True:
            page = {"Prefix": prefix, **kwargs, **({"ContinuationToken": token} if token else {})}
            response: dict[str, Any] = self._call("list_objects_v2", prefix, **page)
            yield response
            if not response.get("IsTruncated"):
                return
            token = response["NextContinuationToken"]

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, in key order."""
        for response in self.list_pages(prefix):
            for item in response.get("Contents", []):
                yield ObjectInfo(item["Key"], item["ETag"], int(item["Size"]))

    def list_folders(self, prefix: str) -> Iterator[str]:
        """The immediate sub-folders of ``prefix`` (with their trailing slash)."""
        for response in self.list_pages(prefix, Delimiter="/"):
            for item in response.get("CommonPrefixes", []):
                yield str(item["Prefix"])

    def head(self, key: str) -> ObjectInfo:
        """The key's ETag and size; ``ObjectNotFoundError`` if it is missing."""
        response = self._call("head_object", key, Key=key)
        return ObjectInfo(key, str(response["ETag"]), int(response["ContentLength"]))

    def create_multipart(
        self, key: str, *, content_type: str = GZIP_CONTENT_TYPE, metadata: dict[str, str] | None = None
    ) -> str:
        """Start a multipart upload of ``key``; returns its upload ID. Nothing is visible until completed."""
        kwargs: dict[str, Any] = {"Key": key, "ContentType": content_type}
        if metadata:
            kwargs["Metadata"] = metadata
        return str(self._call("create_multipart_upload", key, **kwargs)["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str:
        """Store part ``number`` (1-based; all but the last at least 5 MiB); returns its ETag."""
        response = self._call("upload_part", key, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return str(response["ETag"])

    def complete_multipart(
        self, key: str, upload_id: str, part_etags: list[str], *, if_none_match: bool = False
    ) -> str:
        """Make the uploaded parts (ETags in part order) the object ``key``, atomically; returns its ETag.

        Completing an upload again is harmless on S3; ``ObjectNotFoundError`` (NoSuchUpload) means
        the upload is gone (completed long ago, aborted, or expired).
        """
        kwargs: dict[str, Any] = {
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {
                "Parts": [{"PartNumber": i, "ETag": etag} for i, etag in enumerate(part_etags, start=1)]
            },
        }
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        return str(self._call("complete_multipart_upload", key, **kwargs)["ETag"])

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an unfinished upload and its parts."""
        self._call("abort_multipart_upload", key, Key=key, UploadId=upload_id)

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Key=key)

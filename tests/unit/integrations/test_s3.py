"""S3Store against a fake client: conditional puts, error mapping, pagination."""

from __future__ import annotations

import io
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from changelake.exceptions import (
    AccessDeniedError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StorageError,
    ThrottledError,
)
from changelake.integrations.base import ObjectInfo
from changelake.integrations.s3 import S3Store

BUCKET = "changelake-test"


def client_error(code: str, operation: str = "PutObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, operation)


class FakeS3Client:
    """A dict of objects; records calls; ``fail`` maps an operation to an error raised once."""

    def __init__(self, page_size: int = 1000) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail: dict[str, Exception] = {}
        self.page_size = page_size

    def _record(self, operation: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((operation, kwargs))
        assert kwargs["Bucket"] == BUCKET
        if operation in self.fail:
            raise self.fail.pop(operation)

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self._record("put_object", kwargs)
        key = kwargs["Key"]
        if kwargs.get("IfNoneMatch") == "*" and key in self.objects:
            raise client_error("PreconditionFailed")
        if "IfMatch" in kwargs and kwargs["IfMatch"] != self._etag(key):
            raise client_error("PreconditionFailed")
        self.objects[key] = kwargs["Body"]
        return {"ETag": self._etag(key)}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self._record("get_object", kwargs)
        key = kwargs["Key"]
        if key not in self.objects:
            raise client_error("NoSuchKey", "GetObject")
        return {"Body": io.BytesIO(self.objects[key]), "ETag": self._etag(key)}

    def delete_object(self, **kwargs: Any) -> dict[str, Any]:
        self._record("delete_object", kwargs)
        self.objects.pop(kwargs["Key"], None)
        return {}

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self._record("list_objects_v2", kwargs)
        prefix, delimiter = kwargs["Prefix"], kwargs.get("Delimiter")
        if delimiter:
            found = sorted(
                {
                    prefix + k[len(prefix) :].split("/")[0] + "/"
                    for k in self.objects
                    if k.startswith(prefix) and "/" in k[len(prefix) :]
                }
            )
        else:
            found = sorted(k for k in self.objects if k.startswith(prefix))
        start = int(kwargs.get("ContinuationToken", "0"))
        page = found[start : start + self.page_size]
        response: dict[str, Any] = {"IsTruncated": start + self.page_size < len(found)}
        if response["IsTruncated"]:
            response["NextContinuationToken"] = str(start + self.page_size)
        if delimiter:
            response["CommonPrefixes"] = [{"Prefix": p} for p in page]
        else:
            response["Contents"] = [
                {"Key": k, "ETag": self._etag(k), "Size": len(self.objects[k])} for k in page
            ]
        return response

    def _etag(self, key: str) -> str:
        return f'"{hash(self.objects.get(key, b"")) & 0xFFFF:04x}"'


def store(page_size: int = 1000) -> tuple[S3Store, FakeS3Client]:
    client = FakeS3Client(page_size)
    return S3Store(BUCKET, client=client), client


def test_put_passes_body_and_content_type() -> None:
    # GIVEN a store WHEN an object is put plainly
    s3, client = store()
    etag = s3.put("raw/a.jsonl.gz", b"data", metadata={"count": "1"})
    # THEN the request carries key, body, gzip content type, metadata and no condition
    operation, kwargs = client.calls[0]
    assert operation == "put_object"
    assert kwargs == {
        "Bucket": BUCKET,
        "Key": "raw/a.jsonl.gz",
        "Body": b"data",
        "ContentType": "application/gzip",
        "Metadata": {"count": "1"},
    }
    assert etag == client._etag("raw/a.jsonl.gz")


def test_put_if_none_match_passes_star_and_refuses_existing() -> None:
    # GIVEN a store WHEN putting with if_none_match
    s3, client = store()
    s3.put("k", b"first", if_none_match=True)
    # THEN the request carries IfNoneMatch="*"
    assert client.calls[0][1]["IfNoneMatch"] == "*"
    assert "IfMatch" not in client.calls[0][1]
    # AND a second conditional put of the same key loses with PreconditionFailedError
    with pytest.raises(PreconditionFailedError) as info:
        s3.put("k", b"second", if_none_match=True)
    assert info.value.code == "PreconditionFailed"
    assert f"s3://{BUCKET}/k" in str(info.value)
    assert client.objects["k"] == b"first"


def test_put_if_match_passes_etag() -> None:
    # GIVEN an object and its ETag
    s3, client = store()
    etag = s3.put("k", b"v1")
    # WHEN putting with if_match on the current ETag THEN it is passed and the write succeeds
    s3.put("k", b"v2", if_match=etag)
    assert client.calls[-1][1]["IfMatch"] == etag
    assert client.objects["k"] == b"v2"
    # AND with a stale ETag it is a PreconditionFailedError
    with pytest.raises(PreconditionFailedError):
        s3.put("k", b"v3", if_match=etag)
    assert client.objects["k"] == b"v2"


@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_412_is_precondition_failed(code: str) -> None:
    # GIVEN S3 answering 412 to a put WHEN putting THEN PreconditionFailedError is raised
    s3, client = store()
    client.fail["put_object"] = client_error(code)
    with pytest.raises(PreconditionFailedError):
        s3.put("k", b"x", if_none_match=True)


def test_get_missing_is_object_not_found() -> None:
    # GIVEN no object WHEN it is read THEN ObjectNotFoundError names the key
    s3, _ = store()
    with pytest.raises(ObjectNotFoundError, match=f"s3://{BUCKET}/missing"):
        s3.get("missing")
    with pytest.raises(ObjectNotFoundError):
        s3.get_with_etag("missing")


def test_get_and_get_with_etag_and_open() -> None:
    # GIVEN an object WHEN read in each way THEN the bytes (and ETag) come back
    s3, _ = store()
    etag = s3.put("k", b"payload")
    assert s3.get("k") == b"payload"
    assert s3.get_with_etag("k") == (b"payload", etag)
    assert s3.open("k").read() == b"payload"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("AccessDenied"), AccessDeniedError),
        (client_error("SlowDown"), ThrottledError),
        (client_error("InternalError"), StorageError),
        (EndpointConnectionError(endpoint_url="http://localhost:1"), StorageError),
    ],
)
def test_errors_are_mapped(error: Exception, expected: type[Exception]) -> None:
    # GIVEN a failing put WHEN putting THEN the error is mapped by code (never swallowed)
    s3, client = store()
    client.fail["put_object"] = error
    with pytest.raises(expected) as info:
        s3.put("k", b"x")
    assert info.value.__cause__ is error
    assert "k" not in client.objects


def test_list_objects_follows_pagination() -> None:
    # GIVEN 7 objects under a prefix (and others outside it), listed 3 per page
    s3, client = store(page_size=3)
    for i in range(7):
        client.objects[f"raw/t/dt=2026-01-01/hour=00/{i}.gz"] = b"x" * i
    client.objects["raw/other/x.gz"] = b""
    # WHEN listed
    listed = list(s3.list_objects("raw/t/"))
    # THEN every object is returned once, in key order, with size and ETag
    assert [o.key for o in listed] == [f"raw/t/dt=2026-01-01/hour=00/{i}.gz" for i in range(7)]
    assert listed[3] == ObjectInfo("raw/t/dt=2026-01-01/hour=00/3.gz", client._etag(listed[3].key), 3)
    # AND three requests were made, the later ones with the continuation token
    lists = [kwargs for op, kwargs in client.calls if op == "list_objects_v2"]
    assert [kwargs.get("ContinuationToken") for kwargs in lists] == [None, "3", "6"]
    assert s3.requests == 3


def test_list_folders_follows_pagination() -> None:
    # GIVEN five hour folders listed two per page
    s3, client = store(page_size=2)
    for hour in range(5):
        client.objects[f"raw/t/dt=2026-01-01/hour={hour:02d}/f.gz"] = b""
    # WHEN the folders are listed THEN all five come back with trailing slashes
    assert list(s3.list_folders("raw/t/dt=2026-01-01/")) == [
        f"raw/t/dt=2026-01-01/hour={hour:02d}/" for hour in range(5)
    ]
    assert all(kwargs["Delimiter"] == "/" for _, kwargs in client.calls)


def test_empty_listing() -> None:
    # GIVEN nothing under a prefix WHEN listed THEN nothing comes back after one request
    s3, client = store()
    assert list(s3.list_objects("raw/")) == []
    assert len(client.calls) == 1


def test_delete() -> None:
    # GIVEN an object WHEN deleted THEN it is gone
    s3, client = store()
    s3.put("k", b"x")
    s3.delete("k")
    assert "k" not in client.objects

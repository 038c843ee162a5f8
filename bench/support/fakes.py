"""In-memory AWS clients that record every request and its payload."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class FakeBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, amount: int | None = None) -> bytes:
        if amount is None:
            data, self._data = self._data, b""
            return data
        data, self._data = self._data[:amount], self._data[amount:]
        return data


@dataclass
class FakeSqsClient:
    """An in-memory SQS client: accepts every entry and records each request and its payload."""

    calls: dict[str, int] = field(default_factory=dict)
    payloads: list[int] = field(default_factory=list)  # payload bytes of each request
    bodies: list[str] = field(default_factory=list)
    keep_bodies: bool = True

    def _count(self, operation: str, payload: int) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        self.payloads.append(payload)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        payload = 0
        for entry in Entries:
            body = entry["MessageBody"]
            payload += len(body.encode())
            if self.keep_bodies:
                self.bodies.append(body)
        self._count("SendMessageBatch", payload)
        return {
            "Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in Entries],
            "Failed": [],
        }

    def send_message(self, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        self._count("SendMessage", len(MessageBody.encode()))
        if self.keep_bodies:
            self.bodies.append(MessageBody)
        return {"MessageId": str(len(self.payloads))}


@dataclass
class FakeS3Client:
    """An in-memory S3 client recording requests (objects kept so claims can be read back)."""

    calls: dict[str, int] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    bytes_put: int = 0
    keep_objects: bool = True

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self._count("PutObject")
        self.bytes_put += len(Body)
        if self.keep_objects:
            self.objects[Key] = Body
        return {"ETag": '"fake"'}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._count("GetObject")
        return {"Body": FakeBody(self.objects[Key]), "ETag": '"fake"'}


# -- a real botocore SQS client whose HTTP layer is replaced by an in-memory recorder ------------


class _RawBody:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data


def recording_sqs_client(recorder: FakeSqsClient) -> Any:
    """A boto3 SQS client that does everything but the network: serialize, sign, parse.

    The ``before-send`` hook answers every request in memory (accepting every entry, with the
    MD5 botocore checks) and records it in ``recorder``, so both consumers pay the SDK's real
    per-request CPU cost, which an in-memory fake alone would hide.
    """
    import hashlib

    import boto3
    from botocore.awsrequest import AWSResponse

    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        endpoint_url="https://sqs.us-east-1.amazonaws.com",
    )

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    def answer(request: Any, **_: Any) -> Any:
        body = json.loads(request.body)
        if "Entries" in body:
            recorder.send_message_batch(QueueUrl=body["QueueUrl"], Entries=body["Entries"])
            response: dict[str, Any] = {
                "Successful": [
                    {
                        "Id": entry["Id"],
                        "MessageId": entry["Id"],
                        "MD5OfMessageBody": md5(entry["MessageBody"]),
                    }
                    for entry in body["Entries"]
                ],
                "Failed": [],
            }
        else:
            recorder.send_message(QueueUrl=body["QueueUrl"], MessageBody=body["MessageBody"])
            response = {"MessageId": "m", "MD5OfMessageBody": md5(body["MessageBody"])}
        headers = {"content-type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 200, headers, _RawBody(json.dumps(response).encode()))

    client.meta.events.register("before-send.sqs", answer)
    return client

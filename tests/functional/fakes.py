"""Fakes that wrap real (moto) boto3 clients and inject failures the way AWS reports them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


def client_error(code: str, operation: str, *, status: int = 500) -> ClientError:
    """A ClientError exactly as botocore raises it for ``code``."""
    return ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class WrappingClient:
    """Delegates every call to ``real`` unless a subclass intercepts it; counts calls by operation."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: dict[str, int] = {}

    def _count(self, operation: str) -> int:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        return self.calls[operation]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class ThrottlingSqs(WrappingClient):
    """SendMessageBatch is throttled for the first ``throttled_calls`` requests, then works."""

    def __init__(self, real: Any, throttled_calls: int) -> None:
        super().__init__(real)
        self.throttled_calls = throttled_calls

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self._count("send_message_batch") <= self.throttled_calls:
            raise client_error("ThrottlingException", "SendMessageBatch", status=400)
        return self.real.send_message_batch(**kwargs)


class FailingEntriesSqs(WrappingClient):
    """SendMessageBatch reports the entries ``fails(entry_id)`` selects as failed, on every attempt."""

    def __init__(self, real: Any, fails: Callable[[str], bool], *, code: str = "InternalError") -> None:
        super().__init__(real)
        self.fails = fails
        self.code = code

    def send_message_batch(self, **kwargs: Any) -> Any:
        self._count("send_message_batch")
        entries = kwargs["Entries"]
        keep = [entry for entry in entries if not self.fails(entry["Id"])]
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if keep:
            response = dict(self.real.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=keep))
            response.setdefault("Failed", [])
        response["Failed"] = list(response["Failed"]) + [
            {"Id": entry["Id"], "SenderFault": False, "Code": self.code, "Message": "injected"}
            for entry in entries
            if self.fails(entry["Id"])
        ]
        return response


class FailingPutS3(WrappingClient):
    """PutObject fails for keys starting with ``prefix``; everything else reaches moto."""

    def __init__(self, real: Any, prefix: str, *, code: str = "InternalError") -> None:
        super().__init__(real)
        self.prefix = prefix
        self.code = code

    def put_object(self, **kwargs: Any) -> Any:
        self._count("put_object")
        if str(kwargs["Key"]).startswith(self.prefix):
            raise client_error(self.code, "PutObject")
        return self.real.put_object(**kwargs)

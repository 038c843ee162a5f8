"""The base of every adapter, and the small interfaces the domain code sees them through.

``AwsAdapter`` builds its boto3 client lazily, with retries tuned for Lambda (boto3 reads
``AWS_ENDPOINT_URL`` and the region itself, so a local endpoint needs no code here). The domain
code (ingest, compaction, recovery) types its collaborators as ``ObjectStore``, ``MultipartStore``
and ``Queue``; ``S3Store`` and ``SqsQueue`` are their implementations, wired by the handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from changelake.exceptions import DeliveryError, map_client_error

GZIP_CONTENT_TYPE = "application/gzip"

# botocore's standard mode retries throttling and 5xx with backoff; our adapters add a second,
# per-entry layer on top for batch APIs, whose partial failures botocore does not retry.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


#: Called with every client ``build_client`` makes; empty in Lambda. The local fault layer
#: (changelake_local/faults.py) registers its botocore event handlers through it.
CLIENT_HOOKS: list[Callable[[Any], None]] = []


def build_client(service: str) -> Any:
    """A boto3 client for ``service`` with changelake's retry and timeout settings."""
    client = boto3.client(service, config=_CONFIG)
    for hook in CLIENT_HOOKS:
        hook(client)
    return client


class AwsAdapter:
    """One AWS service behind a small interface: the client is injected or built on first use,
    every request is counted, and botocore errors become changelake errors by their code."""

    service: ClassVar[str]

    def __init__(self, *, client: Any = None) -> None:
        self._client = client
        #: API calls made, for metrics and the benchmark's cost model.
        self.requests = 0

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = build_client(self.service)
        return self._client

    def _request(self, operation: str, resource: str, **kwargs: Any) -> Any:
        """Call ``operation``; a failure raises the ``DeliveryError`` its code maps to."""
        self.requests += 1
        try:
            return getattr(self.client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise map_client_error(exc, resource=resource) from exc


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object."""

    key: str
    etag: str
    size: int


class ObjectStore(Protocol):
    """One bucket: whole objects and listings (see ``S3Store`` for each call's guarantee)."""

    @property
    def bucket(self) -> str: ...

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = GZIP_CONTENT_TYPE,
        if_none_match: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str: ...

    def get(self, key: str) -> bytes: ...

    def get_with_etag(self, key: str) -> tuple[bytes, str]: ...

    def open(self, key: str) -> Any: ...

    def head(self, key: str) -> ObjectInfo: ...

    def delete(self, key: str) -> None: ...

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def list_folders(self, prefix: str) -> Iterator[str]: ...


class MultipartStore(ObjectStore, Protocol):
    """A bucket that also writes large objects in parts, invisible until completed."""

    def create_multipart(
        self, key: str, *, content_type: str = GZIP_CONTENT_TYPE, metadata: dict[str, str] | None = None
    ) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> str: ...

    def complete_multipart(
        self, key: str, upload_id: str, part_etags: list[str], *, if_none_match: bool = False
    ) -> str: ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A body to send; ``entry_id`` is unique within one call."""

    entry_id: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Bytes SQS counts for this message: body plus attribute names, types and values."""
        size = len(self.body.encode())
        for name, attribute in self.attributes.items():
            value = attribute.get("StringValue") or attribute.get("BinaryValue") or ""
            size += len(name) + len(attribute.get("DataType", "")) + len(value)
        return size


class Queue(Protocol):
    """One queue (see ``SqsQueue`` for each call's guarantee); ``requests`` counts API calls made."""

    requests: int

    def send_batch(self, messages: Sequence[OutboundMessage]) -> dict[str, DeliveryError]: ...

    def receive(
        self, max_messages: int = 10, *, wait_seconds: int = 0, visibility_timeout: int | None = None
    ) -> list[dict[str, Any]]: ...

    def delete_batch(self, receipts: dict[str, str]) -> dict[str, DeliveryError]: ...

    def change_visibility(self, receipt_handle: str, timeout_seconds: int) -> None: ...

    def approximate_visible(self) -> int: ...

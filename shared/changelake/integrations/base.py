"""Building boto3 clients lazily, with retries tuned for Lambda, and the base of every adapter.

boto3 reads ``AWS_ENDPOINT_URL`` and the region itself, so a local endpoint needs no code here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from changelake.exceptions import map_client_error

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

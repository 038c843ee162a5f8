"""Building boto3 clients lazily, with retries tuned for Lambda.

boto3 reads ``AWS_ENDPOINT_URL`` and the region itself, so a local endpoint needs no code here.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# botocore's standard mode retries throttling and 5xx with backoff; our adapters add a second,
# per-entry layer on top for batch APIs, whose partial failures botocore does not retry.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=30)


def build_client(service: str) -> Any:
    """A boto3 client for ``service`` with changelake's retry and timeout settings."""
    return boto3.client(service, config=_CONFIG)

"""boto3 clients for the local endpoint: explicit endpoint, region and dummy credentials."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from changelake_local.endpoint import DUMMY_CREDENTIALS, REGION

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=_CONFIG,
    )

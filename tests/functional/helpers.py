"""Helpers for functional tests: SQS event building, reading raw/ back, comparing values."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import boto3

from changelake.formats.lambda_events import sqs_event as lambda_sqs_event
from changelake_testing.tables import pk_sk_table
from tests.conftest import REGION, Stack

QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:changelake-ChangeQueue"


def sqs_event(messages: list[dict[str, Any]], queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    """The Lambda SQS event for messages received with boto3 (the format Lambda delivers)."""
    return lambda_sqs_event(messages, queue_arn, REGION)


def read_jsonl_gz(stack: Stack, key: str) -> list[dict[str, Any]]:
    """The records of one gzip JSON Lines object, numbers parsed exactly."""
    text = gzip.decompress(stack.read(key)).decode()
    return [json.loads(line, parse_float=Decimal, parse_int=Decimal) for line in text.splitlines()]


def create_stream_table(table: str) -> dict[str, Any]:
    """A table with a NEW_AND_OLD_IMAGES stream on the moto server; returns its description."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    description = dynamodb.create_table(**pk_sk_table(table, stream=True))["TableDescription"]
    return dict(description)


def reference_value(attribute: dict[str, Any]) -> Any:
    """An independent reading of one DynamoDB JSON value: numbers as Decimal, sets as lists in order."""
    ((tag, value),) = attribute.items()
    if tag in ("S", "B", "BOOL"):
        return value
    if tag == "NULL":
        return None
    if tag == "N":
        return Decimal(value)
    if tag in ("SS", "BS"):
        return list(value)
    if tag == "NS":
        return [Decimal(item) for item in value]
    if tag == "M":
        return {key: reference_value(item) for key, item in value.items()}
    if tag == "L":
        return [reference_value(item) for item in value]
    raise AssertionError(f"unexpected tag {tag}")


def reference_image(image: dict[str, Any] | None) -> Any:
    return None if image is None else {key: reference_value(item) for key, item in image.items()}

"""Fixtures shared by every test layer.

Functional tests talk to a real moto server over HTTP on 127.0.0.1 (``AWS_ENDPOINT_URL``), with
fake credentials and an explicit region, exactly as the handlers would talk to AWS.
"""

from __future__ import annotations

import gc
import importlib
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from changelake_local.moto_server import behave_like_s3

REGION = "us-east-1"
BUCKET = "changelake-test-data"


@pytest.fixture(scope="session", autouse=True)
def unfrozen_at_exit() -> Iterator[None]:
    """The handlers' cold start gc.freeze()s every live object. Frozen objects outlive the
    interpreter's teardown, and DuckDB's binding (nanobind) reports its own as leaks at exit."""
    yield
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, an explicit region, and no trace of the developer's own AWS setup."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "changelake")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Changelake")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server on a free port of 127.0.0.1, for the whole session, answering as S3 does
    where moto does not (``behave_like_s3``)."""
    behave_like_s3()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The moto server, emptied, with boto3 pointed at it."""
    reset_moto(moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server


def reset_moto(moto_server: str) -> None:
    """Empty every service of the moto server."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


@dataclass
class Stack:
    """The resources a functional test needs, created on the moto server."""

    bucket: str
    queue_url: str
    dlq_url: str
    stream_failure_queue_url: str
    s3: Any
    sqs: Any
    environment: dict[str, str] = field(default_factory=dict)

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def read(self, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def drain(self, queue_url: str | None = None, *, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every message now in a queue, received (and left in flight) in SQS's record format."""
        url = queue_url or self.queue_url
        messages: list[dict[str, Any]] = []
        while len(messages) < limit:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)
        return messages


@pytest.fixture
def stack(endpoint: str) -> Stack:
    """Bucket and queues as the template defines them (DLQ after three receives)."""
    return create_stack(endpoint)


def create_stack(endpoint: str) -> Stack:
    """Create the bucket and queues of ``stack`` on the moto server at ``endpoint``."""
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=endpoint)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    dlq_url = sqs.create_queue(QueueName="changelake-ChangeDLQ")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName="changelake-ChangeQueue",
        Attributes={
            "VisibilityTimeout": "660",
            "MaximumMessageSize": "262144",
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}',
        },
    )["QueueUrl"]
    failure_url = sqs.create_queue(QueueName="changelake-StreamFailureQueue")["QueueUrl"]
    environment = {
        "BUCKET_NAME": BUCKET,
        "QUEUE_URL": queue_url,
        "DLQ_URL": dlq_url,
        "STREAM_FAILURE_QUEUE_URL": failure_url,
    }
    return Stack(BUCKET, queue_url, dlq_url, failure_url, s3, sqs, environment)


@dataclass
class FakeLambdaContext:
    """What Lambda passes as ``context``; ``remaining_ms`` lets a test run a deadline down."""

    function_name: str = "changelake-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:changelake-test"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


HandlerLoader = Callable[..., ModuleType]


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[HandlerLoader]:
    """Import ``functions/<name>/app.py`` afresh (a cold start) with ``environment`` set."""
    loaded: list[str] = []

    def load(name: str, environment: dict[str, str] | None = None, **overrides: str) -> ModuleType:
        for key, value in {**(environment or {}), **overrides}.items():
            monkeypatch.setenv(key, value)
        module_name = f"functions.{name}.app"
        sys.modules.pop(module_name, None)
        loaded.append(module_name)
        return importlib.import_module(module_name)

    yield load
    for module_name in loaded:
        sys.modules.pop(module_name, None)

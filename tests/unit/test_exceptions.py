"""map_client_error: botocore failures mapped to changelake errors by code, never by message."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from changelake.exceptions import (
    AccessDeniedError,
    DeliveryError,
    ObjectNotFoundError,
    PreconditionFailedError,
    QueueUnavailableError,
    RecordRejected,
    StorageError,
    StreamRangeExpiredError,
    ThrottledError,
    map_client_error,
)

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
S3 = "s3://bucket/key"


def client_error(code: str, message: str = "Something went wrong", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "SomeOperation",
    )


@pytest.mark.parametrize(
    ("code", "resource", "expected"),
    [
        ("Throttling", QUEUE, ThrottledError),
        ("ThrottlingException", QUEUE, ThrottledError),
        ("RequestThrottled", QUEUE, ThrottledError),
        ("TooManyRequestsException", QUEUE, ThrottledError),
        ("ProvisionedThroughputExceededException", QUEUE, ThrottledError),
        ("RequestLimitExceeded", QUEUE, ThrottledError),
        ("KMS.ThrottlingException", QUEUE, ThrottledError),
        ("SlowDown", S3, ThrottledError),
        ("AWS.SimpleQueueService.NonExistentQueue", QUEUE, QueueUnavailableError),
        ("QueueDoesNotExist", QUEUE, QueueUnavailableError),
        ("NoSuchKey", S3, ObjectNotFoundError),
        ("NoSuchBucket", S3, ObjectNotFoundError),
        ("404", S3, ObjectNotFoundError),
        ("PreconditionFailed", S3, PreconditionFailedError),
        ("412", S3, PreconditionFailedError),
        ("ConditionalRequestConflict", S3, PreconditionFailedError),
        ("AccessDenied", S3, AccessDeniedError),
        ("AccessDeniedException", QUEUE, AccessDeniedError),
        ("KMS.AccessDeniedException", QUEUE, AccessDeniedError),
        ("TrimmedDataAccessException", "arn:aws:dynamodb:stream", StreamRangeExpiredError),
        ("ExpiredIteratorException", "arn:aws:dynamodb:stream", StreamRangeExpiredError),
        ("SomethingNew", S3, StorageError),
        ("InternalError", S3, StorageError),
        ("SomethingNew", QUEUE, DeliveryError),
        ("", QUEUE, DeliveryError),
    ],
)
def test_codes_map_to_classes(code: str, resource: str, expected: type[DeliveryError]) -> None:
    # GIVEN a ClientError with a service error code
    # WHEN mapped
    error = map_client_error(client_error(code), resource=resource)
    # THEN it is exactly the class for that code, keeps the code and names the resource
    assert type(error) is expected
    assert error.code == code
    assert resource in str(error)
    # AND it is a DeliveryError (retry), never a RecordRejected (quarantine)
    assert isinstance(error, DeliveryError)
    assert not isinstance(error, RecordRejected)


def test_unknown_code_on_queue_is_plain_delivery_error() -> None:
    # GIVEN an unknown code on a queue WHEN mapped THEN it is no more specific than DeliveryError
    error = map_client_error(client_error("Weird"), resource=QUEUE)
    assert type(error) is DeliveryError
    assert not isinstance(error, StorageError)


def test_message_text_is_never_used() -> None:
    # GIVEN two errors with the same message (one that mentions throttling) and different codes
    message = "Rate exceeded: Throttling, access denied, NoSuchKey, queue does not exist"
    throttled = map_client_error(client_error("ThrottlingException", message), resource=QUEUE)
    missing = map_client_error(client_error("QueueDoesNotExist", message), resource=QUEUE)
    other = map_client_error(client_error("InvalidParameterValue", message), resource=QUEUE)
    # WHEN compared THEN the code alone decided each class
    assert type(throttled) is ThrottledError
    assert type(missing) is QueueUnavailableError
    assert type(other) is DeliveryError
    # AND the message text is not copied into ours (no item data leaks through messages)
    assert message not in str(other)


def test_status_code_alone_does_not_decide() -> None:
    # GIVEN an unknown code with HTTP status 404 on S3 WHEN mapped THEN it is a StorageError, not "not found"
    error = map_client_error(client_error("Mystery", status=404), resource=S3)
    assert type(error) is StorageError


@pytest.mark.parametrize(
    ("exc", "resource", "expected"),
    [
        (EndpointConnectionError(endpoint_url="https://sqs.example"), QUEUE, QueueUnavailableError),
        (EndpointConnectionError(endpoint_url="https://s3.example"), S3, StorageError),
        (ConnectTimeoutError(endpoint_url="https://sqs.example"), QUEUE, QueueUnavailableError),
        (ReadTimeoutError(endpoint_url="https://s3.example"), S3, StorageError),
        (NoCredentialsError(), QUEUE, QueueUnavailableError),
    ],
)
def test_botocore_errors_mean_unreachable(
    exc: Exception, resource: str, expected: type[DeliveryError]
) -> None:
    # GIVEN a botocore failure with no service response (connection, timeout, credentials)
    # WHEN mapped
    error = map_client_error(exc, resource=resource)
    # THEN the queue or store counts as unreachable, with the botocore class as its code
    assert type(error) is expected
    assert error.code == type(exc).__name__
    assert resource in str(error)

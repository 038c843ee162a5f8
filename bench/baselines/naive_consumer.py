"""The reference naive stream consumer: written the way the Powertools documentation teaches it.

``BatchProcessor(event_type=EventType.DynamoDBStreams)`` and ``process_partial_response`` with a
per-record handler that receives the ``DynamoDBRecord`` data class, deserializes the new image
(the data class's ``new_image`` property, Powertools' own ``TypeDeserializer``) and sends one
``SendMessage`` per record with ``json.dumps`` and a Decimal handler. It does less than
changelake's consumer (no old image, no compression, no exact numbers, one request per change),
so the ratio against it is, if anything, flattering to it. No per-record logging: the documented
example logs every image, which would only make it slower.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


class NaiveConsumer:
    """One SendMessage per stream record; failures reported per record by Powertools."""

    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self.client = client
        self.processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def record_handler(self, record: DynamoDBRecord) -> None:
        stream = record.dynamodb
        body = {
            "event_id": record.event_id,
            "event_name": record.event_name.name if record.event_name else None,
            "keys": stream.keys if stream else None,
            "new_image": stream.new_image if stream else None,
        }
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body, default=_default))

    def lambda_handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event, record_handler=self.record_handler, processor=self.processor, context=context
            )
        )

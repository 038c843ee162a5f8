"""DynamoDB's TTL deletes, emulated on the local stack, where moto never expires an item.

DynamoDB's TTL process deletes an item some time after its TTL attribute's epoch second has
passed, and marks the REMOVE record it writes to the stream with ``userIdentity`` (type
``Service``, principal ``dynamodb.amazonaws.com``); the consumer tells TTL deletes from a user's
by it. The local load generator gives items an ``expires_at`` (past for the ones it deletes as TTL
would), and the stream mapping marks a REMOVE of an item whose ``expires_at`` had passed when the
record was created the way DynamoDB does.
"""

from __future__ import annotations

from typing import Any

#: The template's TTL attribute of ChangeTable.
TTL_ATTRIBUTE = "expires_at"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def marked_if_ttl_delete(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (Lambda's format), with DynamoDB's TTL ``userIdentity`` if it is a REMOVE of an item
    whose ``expires_at`` had passed when the record was created (and it names no identity yet)."""
    if "userIdentity" not in record and record["eventName"] == "REMOVE" and _expired(record["dynamodb"]):
        return {**record, "userIdentity": dict(TTL_IDENTITY)}
    return record


def _expired(dynamodb: dict[str, Any]) -> bool:
    expires = (dynamodb.get("OldImage") or {}).get(TTL_ATTRIBUTE, {}).get("N")
    created = dynamodb.get("ApproximateCreationDateTime")
    try:
        return expires is not None and isinstance(created, int | float) and float(expires) <= created
    except ValueError:
        return False

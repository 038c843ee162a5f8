"""Tables keyed like ChangeTable (``pk`` and ``sk``, both strings), as DynamoDB's CreateTable takes
them, for the tests and local runs that create one."""

from __future__ import annotations

from typing import Any

_KEYS = ({"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"})


def pk_sk_table(name: str, *, stream: bool = False, range_key_first: bool = False) -> dict[str, Any]:
    """CreateTable's arguments for an on-demand table ``name``; ``stream``: with a stream of both
    images; ``range_key_first``: the key schema lists ``sk`` first (a reader of DescribeTable must
    not rely on the order)."""
    keys = list(reversed(_KEYS)) if range_key_first else list(_KEYS)
    arguments: dict[str, Any] = {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    return arguments

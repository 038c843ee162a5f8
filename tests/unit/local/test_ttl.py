"""TTL deletes on the local stack: a REMOVE of an expired item is marked as DynamoDB's TTL marks it."""

from __future__ import annotations

from typing import Any

import pytest

from changelake_local.ttl import TTL_ATTRIBUTE, TTL_IDENTITY, marked_if_ttl_delete

CREATED = 1_795_867_200.125


def removal(expires: str | None, *, name: str = "REMOVE", **extra: Any) -> dict[str, Any]:
    old = {"pk": {"S": "session#1"}} | ({TTL_ATTRIBUTE: {"N": expires}} if expires is not None else {})
    return {
        "eventName": name,
        "dynamodb": {"ApproximateCreationDateTime": CREATED, "OldImage": old},
        **extra,
    }


@pytest.mark.parametrize("expires", ["1795867200", "1795867200.125", "1000"])
def test_a_remove_of_an_item_past_its_ttl_is_marked_as_dynamodbs_ttl_delete(expires: str) -> None:
    # GIVEN a REMOVE of an item whose expires_at had passed when the record was created
    # WHEN the runner looks at it THEN it carries the identity DynamoDB's TTL process sets
    marked = marked_if_ttl_delete(removal(expires))
    assert marked["userIdentity"] == TTL_IDENTITY


@pytest.mark.parametrize(
    "record",
    [
        removal("1795867201"),  # not expired yet: a user's delete
        removal(None),  # no TTL attribute
        removal("soon"),  # not a number
        removal("1000", name="MODIFY"),  # not a delete
        removal("1000", userIdentity={"type": "User"}),  # an identity already there
    ],
)
def test_anything_else_is_left_as_it_is(record: dict[str, Any]) -> None:
    # GIVEN a record that is not a REMOVE of an expired item, or already names an identity
    # WHEN the runner looks at it THEN it is unchanged
    assert marked_if_ttl_delete(record) == record

"""Tables keyed like ChangeTable for the tests and local runs (``changelake_testing.tables``)."""

from __future__ import annotations

from changelake_testing.tables import pk_sk_table


def test_a_table_is_keyed_by_pk_and_sk_on_demand_without_a_stream_unless_asked() -> None:
    # GIVEN nothing asked WHEN the arguments are built THEN pk is the hash key, sk the range key
    plain = pk_sk_table("orders")
    assert plain["TableName"] == "orders"
    assert plain["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {item["AttributeName"]: item["AttributeType"] for item in plain["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
    }
    assert plain["BillingMode"] == "PAY_PER_REQUEST"
    assert "StreamSpecification" not in plain


def test_a_stream_carries_both_images_and_the_range_key_may_come_first() -> None:
    streamed = pk_sk_table("orders", stream=True, range_key_first=True)
    assert streamed["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert [key["AttributeName"] for key in streamed["KeySchema"]] == ["sk", "pk"]

"""Change records for the snapshot tests: one item's change at a given time, as the consumer writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from changelake.formats.change_line import ChangeLine, to_change_line
from changelake_testing.stream_records import stream_record

#: A 38-digit number, a 38-significant-digit fraction: exact through every layer or not at all.
BIG = "12345678901234567890123456789012345678"
FRACTION = "0.1234567890123456789012345678901234567"


def item(pk: str, sk: str = "s", **attributes: Any) -> dict[str, Any]:
    """A DynamoDB JSON item with string keys ``pk``/``sk``, exact numbers and ``attributes`` (as S)."""
    image: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": sk},
        "price": {"N": BIG},
        "ratio": {"N": FRACTION},
        "tags": {"SS": ["a", "b"]},
        "nested": {"M": {"n": {"N": "-1.5E+10"}, "l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
    }
    image.update({name: {"S": str(value)} for name, value in attributes.items()})
    return image


def change(
    pk: str,
    at: str,
    sequence: int,
    *,
    name: str = "MODIFY",
    table: str = "orders",
    sk: str = "s",
    keys: dict[str, Any] | None = None,
    ttl: bool = False,
    **attributes: Any,
) -> ChangeLine:
    """The change line of item ``pk``/``sk`` at ``at`` (ISO 8601 UTC), REMOVE without a new image."""
    key_attributes = keys or {"pk": {"S": pk}, "sk": {"S": sk}}
    image = None if name == "REMOVE" else {**item(pk, sk, **attributes), **key_attributes}
    record = stream_record(
        table=table,
        event_name=name,
        sequence_number=sequence,
        created=datetime.fromisoformat(at).timestamp(),
        keys=key_attributes,
        new_image=image,
        old_image=None if name == "INSERT" else item(pk, sk),
        ttl_delete=ttl,
    )
    return to_change_line(record)

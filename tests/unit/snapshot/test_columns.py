"""The Parquet columns of a table from its JSON Schema, and each value's text: exact or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from changelake.snapshot.columns import Column, ColumnLayout, ColumnTypeError
from changelake.snapshot.lines import exact_loads
from changelake.snapshot.parquet import layouts_from_directory

BIG = "12345678901234567890123456789012345678"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "price": {"type": "integer", "minimum": 0, "maximum": 10**38 - 1},
        "amount": {"type": "number", "multipleOf": 0.01, "minimum": -1000, "maximum": 1000},
        "score": {"type": "number"},
        "paid": {"type": ["boolean", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "anything": {},
        "event_id": {"type": "string"},
        "Pk": {"type": "string"},
        "dt": {"type": "string"},
    },
}


def layout() -> ColumnLayout:
    return ColumnLayout.from_schema(SCHEMA)


def row(item: str) -> dict[str, str | None]:
    line = exact_loads(f'{{"keys":{{"pk":"a"}},"item":{item},"event_id":"e","event_time":"t"}}'.encode())
    return layout().row('{"pk":"a"}', line)


def test_each_property_gets_the_column_its_schema_declares() -> None:
    # GIVEN a schema with strings, bounded and unbounded numbers, booleans, nested and untyped values
    # WHEN its layout is made
    columns = {column.name: column for column in layout().columns}

    # THEN bounded numbers are DECIMALs with the declared digits, the rest strings, booleans or JSON
    assert columns["price"] == Column("price", "decimal", 38, 0)
    assert columns["amount"] == Column("amount", "decimal", 6, 2)
    assert columns["score"].kind == "number"
    assert columns["paid"].sql_type == "BOOLEAN"
    assert [columns[name].kind for name in ("pk", "tags", "address", "anything")] == ["string", *["json"] * 3]
    # AND the line's fields come first, the rest of the item last; names a reader would confuse
    # (the line's own, the partition's, two that differ only in case) are left to item_rest
    assert [column.name for column in layout().columns][:4] == [
        "keys",
        "event_id",
        "event_time",
        "sequence_number",
    ]
    assert list(columns)[-1] == "item_rest"
    assert "dt" not in columns
    assert "Pk" not in columns
    assert [column.name for column in layout().columns].count("event_id") == 1


def test_a_row_holds_every_value_exactly_and_the_rest_of_the_item_as_json() -> None:
    # GIVEN an item with a 38-digit number, nested values with exact numbers and attributes no column holds
    item = (
        f'{{"pk":"a","Pk":"b","price":{BIG},"amount":-12.5,"score":1E+400,"paid":true,'
        f'"tags":["x"],"address":{{"city":"c","geo":[1.10]}},"event_id":"mine","extra":{BIG}}}'
    )

    # WHEN it becomes a row
    values = row(item)

    # THEN numbers keep every digit (a decimal written with its scale), nested values are JSON text
    assert values["price"] == BIG
    assert values["amount"] == "-12.50"
    assert values["score"] == "1E+400"
    assert values["paid"] == "true"
    assert values["address"] == '{"city":"c","geo":[1.10]}'
    assert values["event_id"] == "e"  # the line's, not the item's attribute
    assert values["item_rest"] == f'{{"Pk":"b","event_id":"mine","extra":{BIG}}}'
    # AND a missing attribute is NULL
    assert values["anything"] is None


def test_an_item_with_only_columns_has_no_rest() -> None:
    assert row('{"pk":"a"}')["item_rest"] is None


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ('{"amount":1.239}', "attribute 'amount': 1.239 does not fit DECIMAL(6,2)"),
        ('{"amount":10000}', "attribute 'amount': 10000 does not fit DECIMAL(6,2)"),
        ('{"price":1E+38}', "attribute 'price': 1E+38 does not fit DECIMAL(38,0)"),
        ('{"price":0.5}', "attribute 'price': 0.5 does not fit DECIMAL(38,0)"),
        ('{"price":"12"}', "attribute 'price': \"12\" is not a DECIMAL(38,0)"),
        ('{"paid":"yes"}', "attribute 'paid': \"yes\" is not a boolean"),
        ('{"pk":7}', "attribute 'pk': 7 is not a string"),
        ('{"score":false}', "attribute 'score': false is not a number"),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_refused_never_rounded(item: str, message: str) -> None:
    # GIVEN a value the declared column cannot hold exactly
    # WHEN it becomes a row
    # THEN it is refused, naming the attribute, the value and the type
    with pytest.raises(ColumnTypeError) as raised:
        row(item)
    assert str(raised.value) == message


def test_the_digest_changes_with_the_columns() -> None:
    # GIVEN the schema and the same schema with one more digit for amount
    wider = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "amount": {"type": "integer", "minimum": 0, "maximum": 9}},
    }

    # WHEN both are laid out, THEN their digests differ (so the Parquet days are derived again)
    assert ColumnLayout.from_schema(wider).digest != layout().digest
    assert ColumnLayout.from_schema(SCHEMA).digest == layout().digest


def test_a_schema_files_numbers_type_the_columns_with_their_own_digits(tmp_path: Path) -> None:
    # GIVEN a schema file whose numbers a float cannot hold: a step of 30 digits (0.1 as a float), a
    # bound past float's range (infinite as a float), and a bound of 22 digits
    (tmp_path / "orders.json").write_text(
        '{"type": "object", "properties": {'
        '"step": {"type": "number", "multipleOf": 0.100000000000000000000000000001, "minimum": 0,'
        ' "maximum": 9},'
        '"huge": {"type": "integer", "minimum": 0, "maximum": 1E+400},'
        '"wide": {"type": "number", "multipleOf": 0.01, "minimum": -1, "maximum": 1234567890123456789012.5}}}'
    )

    # WHEN the snapshot function lays out its columns
    columns = {column.name: column for column in layouts_from_directory(tmp_path)["orders"].columns}

    # THEN a step that is not a power of ten, and a bound with more than 38 digits, give no DECIMAL (the
    # consumer accepts 0.200000000000000000000000000002, which no DECIMAL(p,1) holds), and the rest
    # have the bound's own digits
    assert columns["step"].kind == "number"
    assert columns["huge"].kind == "number"
    assert columns["wide"] == Column("wide", "decimal", 24, 2)


def test_a_property_with_a_ref_gets_no_type_from_the_keywords_beside_it() -> None:
    # GIVEN a property whose type beside a $ref says integer, while the reference says string
    # (fastjsonschema checks the reference alone, so the consumer accepts "A-7" there)
    schema = {
        "type": "object",
        "properties": {"code": {"$ref": "#/definitions/code", "type": "integer", "minimum": 0, "maximum": 9}},
        "definitions": {"code": {"type": "string"}},
    }

    # WHEN its layout is made and an item the consumer accepts becomes a row
    layout = ColumnLayout.from_schema(schema)
    line = exact_loads(b'{"keys":{"pk":"a"},"item":{"code":"A-7"},"event_id":"e","event_time":"t"}')

    # THEN the property is a JSON column, which holds whatever the reference allows
    assert Column("code", "json") in layout.columns
    assert layout.row('{"pk":"a"}', line)["code"] == '"A-7"'

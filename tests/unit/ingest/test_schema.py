"""Optional per-table JSON Schemas: violations name the path, bad configuration names the file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from changelake.exceptions import ConfigurationError, RecordRejected, SchemaViolation
from changelake.formats.change_line import ChangeLine, to_change_line
from changelake.ingest.schema import SchemaRegistry
from changelake_testing.stream_records import stream_record

SCHEMA = {
    "type": "object",
    "required": ["pk", "price"],
    "properties": {
        "pk": {"type": "string"},
        "price": {"type": "number", "minimum": 0},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
KEYS = {"pk": {"S": "p1"}}


def change(table: str, event_name: str = "INSERT", **image: Any) -> ChangeLine:
    new_image = {**KEYS, **image} if event_name != "REMOVE" else None
    return to_change_line(
        stream_record(
            table=table,
            event_name=event_name,
            sequence_number=1,
            created=1.0,
            keys=KEYS,
            new_image=new_image,
            old_image={**KEYS, **image} if event_name == "REMOVE" else None,
        )
    )


@pytest.fixture
def registry(tmp_path: Path) -> SchemaRegistry:
    (tmp_path / "orders.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "README.md").write_text("not a schema")
    return SchemaRegistry.from_directory(tmp_path)


def test_loads_one_schema_per_table(registry: SchemaRegistry) -> None:
    # GIVEN a folder with orders.json (and a non-JSON file) WHEN loaded THEN only orders has a schema
    assert registry.tables == frozenset({"orders"})


def test_valid_item_passes(registry: SchemaRegistry) -> None:
    # GIVEN an item matching its table's schema WHEN checked THEN nothing is raised
    registry.check(change("orders", price={"N": "12.5"}, address={"M": {"city": {"S": "Kraków"}}}))


@pytest.mark.parametrize(
    ("image", "path"),
    [
        ({"price": {"N": "-1"}}, "new_image.price"),
        ({"price": {"S": "12"}}, "new_image.price"),
        ({"price": {"N": "1"}, "address": {"M": {"city": {"N": "5"}}}}, "new_image.address.city"),
        ({}, "new_image"),  # price is required
    ],
)
def test_violation_names_the_path(registry: SchemaRegistry, image: dict[str, Any], path: str) -> None:
    # GIVEN an item breaking its table's schema
    # WHEN checked THEN it is a SchemaViolation (RecordRejected: quarantine) naming the failing path
    with pytest.raises(SchemaViolation) as info:
        registry.check(change("orders", **image))
    assert info.value.path == path
    assert f"schema violation at {path}: " in info.value.reason
    assert isinstance(info.value, RecordRejected)


def test_remove_without_new_image_is_not_checked(registry: SchemaRegistry) -> None:
    # GIVEN a REMOVE whose old image would break the schema
    # WHEN checked THEN nothing is raised (there is no new image)
    registry.check(change("orders", "REMOVE", price={"N": "-1"}))


def test_tables_without_schema_are_not_checked(registry: SchemaRegistry) -> None:
    # GIVEN another table's item that would break orders' schema WHEN checked THEN it passes
    registry.check(change("inventory", price={"N": "-1"}))


def test_no_directory_means_no_schemas() -> None:
    # GIVEN no SCHEMA_DIR WHEN loaded THEN nothing is checked
    registry = SchemaRegistry.from_directory(None)
    assert registry.tables == frozenset()
    registry.check(change("orders", price={"N": "-1"}))


@pytest.mark.parametrize(
    ("text", "name"),
    [("{not json", "orders.json"), (json.dumps({"type": "nonsense"}), "orders.json"), ("", "orders.json")],
)
def test_bad_schema_file_names_variable_and_file(tmp_path: Path, text: str, name: str) -> None:
    # GIVEN a schema file that is not JSON or not a valid JSON Schema
    (tmp_path / "aaa.json").write_text(json.dumps(SCHEMA))
    (tmp_path / name).write_text(text)
    # WHEN loaded THEN a ConfigurationError names SCHEMA_DIR and the file
    with pytest.raises(ConfigurationError, match=f"SCHEMA_DIR: {name} is not a valid JSON Schema"):
        SchemaRegistry.from_directory(tmp_path)


def test_schema_dir_that_is_not_a_directory(tmp_path: Path) -> None:
    # GIVEN a SCHEMA_DIR that is a file, and one that does not exist
    a_file = tmp_path / "schema.json"
    a_file.write_text("{}")
    for path in (a_file, tmp_path / "missing"):
        # WHEN loaded THEN a ConfigurationError names SCHEMA_DIR and the path
        with pytest.raises(ConfigurationError, match=r"SCHEMA_DIR: .* is not a directory") as info:
            SchemaRegistry.from_directory(path)
        assert str(path) in str(info.value)


# -- numbers are checked exactly: what the consumer accepts fits the columns the schema types ------

#: Bounded numbers: Parquet and Athena give them DECIMAL(9,2), DECIMAL(7,0) and DECIMAL(38,0).
NUMBERS = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "amount": {"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 1000000},
        "quantity": {"type": "integer", "minimum": 0, "maximum": 1000000},
        "big": {"type": "integer", "minimum": 0, "maximum": 10**38 - 1},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1000000},
        "scores": {"type": "array", "items": {"type": "number", "multipleOf": 0.5}},
        "address": {"type": "object", "properties": {"floor": {"type": "integer"}}},
    },
}


def numbers_registry(tmp_path: Path, schema: Any = NUMBERS) -> SchemaRegistry:
    (tmp_path / "orders.json").write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return SchemaRegistry.from_directory(tmp_path)


@pytest.mark.parametrize(
    ("attribute", "inside", "outside", "reason"),
    [
        # a float reads 1.2300000000000000001 as 1.23, a multiple of 0.01; DECIMAL(9,2) cannot hold it
        ("amount", "1.23", "1.2300000000000000001", "must be multiple of 0.01"),
        # 1000000.000000000001 is 1000000.0 as a float, not above the maximum; DECIMAL(9,2) would round it
        ("amount", "1000000", "1000000.000000000001", "must be smaller than or equal to 1000000"),
        ("quantity", "1000000", "1000000.000000000001", "must be integer"),
        # a float reads 1.0000000000000000001 as 1.0, an integer; DECIMAL(7,0) cannot hold it
        ("quantity", "1.0", "1.0000000000000000001", "must be integer"),
        ("quantity", "1E+2", "1.00000000000000000001E+2", "must be integer"),
        # 10**38 + 10 is 1e38 as a float, below 10**38 - 1 (floats compare exactly with ints)
        (
            "big",
            "9.9999999999999999999999999999999999999E+37",
            "1.0000000000000000000000000000000000001E+38",
            "must be smaller than or equal to 99999999999999999999999999999999999999",
        ),
        ("scores", "2.5", "2.5000000000000000000000000001", "must be multiple of 0.5"),
        ("address", "3", "3.0000000000000000000000001", "must be integer"),
    ],
)
def test_a_number_a_float_would_let_through_is_quarantined_naming_its_attribute(
    tmp_path: Path, attribute: str, inside: str, outside: str, reason: str
) -> None:
    # GIVEN a schema bounding numbers, and a value at the edge of what it allows
    registry = numbers_registry(tmp_path)

    # WHEN checked THEN the edge passes
    registry.check(change("orders", **number_image(attribute, inside)))

    # AND a value past it by less than a float can tell is a SchemaViolation naming the attribute
    with pytest.raises(SchemaViolation) as info:
        registry.check(change("orders", **number_image(attribute, outside)))
    path = {"scores": "new_image.scores[1]", "address": "new_image.address.floor"}.get(
        attribute, f"new_image.{attribute}"
    )
    assert info.value.path == path
    assert info.value.reason == f"schema violation at {path}: {path.replace('new_image', 'data', 1)} {reason}"


def reason(registry: SchemaRegistry, **image: Any) -> str:
    """The reason ``registry`` refuses an orders item with ``image``, after the path it names."""
    with pytest.raises(SchemaViolation) as info:
        registry.check(change("orders", **image))
    return info.value.reason.split(": ", 1)[1]


def number_image(attribute: str, number: str) -> dict[str, Any]:
    """``number`` as ``attribute`` of NUMBERS: second of a number set, a map's member, or itself."""
    if attribute == "scores":
        return {attribute: {"NS": ["1", number]}}
    if attribute == "address":
        return {attribute: {"M": {"floor": {"N": number}}}}
    return {attribute: {"N": number}}


def test_a_number_below_an_exclusive_bound_by_less_than_a_float_can_tell_passes(tmp_path: Path) -> None:
    # GIVEN a number below its exclusiveMaximum of 1000000 by 10**-17 (1000000.0 as a float)
    registry = numbers_registry(tmp_path)

    # WHEN checked THEN it passes, and the bound itself does not
    registry.check(change("orders", ratio={"N": "999999.99999999999999999"}))
    registry.check(change("orders", ratio={"N": "0.00000000000000000001"}))
    assert reason(registry, ratio={"N": "1000000"}) == "data.ratio must be smaller than 1000000"
    assert reason(registry, ratio={"N": "0"}) == "data.ratio must be bigger than 0"


def test_an_integral_number_written_with_a_fraction_is_an_integer_only_from_draft_6(tmp_path: Path) -> None:
    # GIVEN the same bounded integer under draft 4 (where 1.0 is not an integer) and draft 7
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", **NUMBERS}
    registry = numbers_registry(tmp_path, draft4)

    # WHEN 1.0 is checked THEN draft 4 refuses it and draft 7 (the default) accepts it
    assert reason(registry, quantity={"N": "1.0"}) == "data.quantity must be integer"
    numbers_registry(tmp_path).check(change("orders", quantity={"N": "1.0"}))


def test_the_draft_4_exclusive_flags_make_its_bounds_exclusive(tmp_path: Path) -> None:
    # GIVEN a draft 4 schema whose maximum is exclusive (exclusiveMaximum: true)
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {"n": {"type": "number", "maximum": 1, "exclusiveMaximum": True}},
    }
    registry = numbers_registry(tmp_path, schema)

    # WHEN a number just below it and the bound itself are checked THEN only the bound is refused
    registry.check(change("orders", n={"N": "0.99999999999999999999"}))
    assert reason(registry, n={"N": "1"}) == "data.n must be smaller than 1"


def test_bounds_and_steps_are_the_schemas_own_digits(tmp_path: Path) -> None:
    # GIVEN a schema whose numbers a float cannot hold: a 30-digit step and a bound past float's range
    schema = (
        '{"properties": {"n": {"type": "number", "multipleOf": 0.100000000000000000000000000001},'
        ' "m": {"type": "number", "maximum": 1E+400, "minimum": 0.10000000000000000001}}}'
    )
    registry = numbers_registry(tmp_path, schema)

    # WHEN numbers at and beside them are checked THEN each is decided on the digits the schema wrote
    registry.check(change("orders", n={"N": "0.200000000000000000000000000002"}))
    assert reason(registry, n={"N": "0.2"}) == "data.n must be multiple of 0.100000000000000000000000000001"
    registry.check(change("orders", m={"N": "1E+125"}))
    registry.check(change("orders", m={"N": "0.10000000000000000001"}))
    assert reason(registry, m={"N": "0.1"}) == "data.m must be bigger than or equal to 0.10000000000000000001"


@pytest.mark.parametrize(
    ("step", "value", "multiple"),
    [
        ("7E-1000000", "7E+125", True),  # 10**1000125 times the step
        ("7E-1000000", "1E+125", False),  # 10**1000125 / 7 is not an integer
        ("1E-1000000", "1E-130", True),
        ("3E+1000000", "9.9999999999999999999999999999999999999E+125", False),
        ("0.01", "1E-130", False),
        ("0.01", "1E+125", True),
    ],
)
def test_steps_and_values_exponents_apart_are_decided_without_expanding_them(
    tmp_path: Path, step: str, value: str, multiple: bool
) -> None:
    # GIVEN a multipleOf and a number whose exponents are a million apart
    registry = numbers_registry(tmp_path, f'{{"properties": {{"n": {{"multipleOf": {step}}}}}}}')

    # WHEN checked THEN the answer is exact, and immediate (no million-digit number is built)
    started = time.perf_counter()
    if multiple:
        registry.check(change("orders", n={"N": value}))
    else:
        assert reason(registry, n={"N": value}) == f"data.n must be multiple of {step}"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("step", ["0", "-0.01", "0.0"])
def test_a_step_that_is_not_positive_fails_the_cold_start_naming_the_file(tmp_path: Path, step: str) -> None:
    # GIVEN a schema whose multipleOf is not greater than 0 (JSON Schema requires it: x / 0 has no answer)
    (tmp_path / "orders.json").write_text(f'{{"properties": {{"n": {{"multipleOf": {step}}}}}}}')

    # WHEN loaded THEN a ConfigurationError names SCHEMA_DIR and the file
    with pytest.raises(ConfigurationError) as info:
        SchemaRegistry.from_directory(tmp_path)
    expected = f"orders.json is not a valid JSON Schema: multipleOf must be greater than 0, got {step}"
    assert str(info.value) == f"SCHEMA_DIR: {expected}"

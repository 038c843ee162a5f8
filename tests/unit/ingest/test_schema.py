"""Optional per-table JSON Schemas: violations name the path, bad configuration names the file."""

from __future__ import annotations

import json
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

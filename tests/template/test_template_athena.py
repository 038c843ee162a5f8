"""The optional Glue database and tables: exactly the tables ``analytics`` renders, behind a parameter."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from analytics.athena import table_definitions
from analytics.lake import Lake, LakeTable

pytestmark = pytest.mark.template

GLUE_TABLES = (
    "RawTable",
    "RawLinesTable",
    "CompactedTable",
    "CompactedLinesTable",
    "SnapshotTable",
    "SnapshotLinesTable",
)
#: Stand-ins for what the template only knows at deploy time.
BUCKET, TABLE = "data-bucket", "change-table"


def _resolved(value: Any, since: str) -> Any:
    """A TableInput value with its Fn::Sub filled in with the stand-ins."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        assert isinstance(text, str)
        for name, replacement in (
            ("DataBucket", BUCKET),
            ("ChangeTable", TABLE),
            ("AthenaPartitionsFrom", since),
        ):
            text = text.replace("${" + name + "}", replacement)
        return text.replace("${!", "${")
    if isinstance(value, dict):
        return {key: _resolved(item, since) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, since) for item in value]
    return value


def test_glue_tables_are_the_rendered_athena_tables(translated: dict[str, Any]) -> None:
    # GIVEN the translated template and the tables analytics renders for ChangeTable (keys pk, sk)
    since = translated["Parameters"]["AthenaPartitionsFrom"]["Default"]
    rendered = table_definitions(
        Lake(BUCKET, since=date.fromisoformat(since)), LakeTable(TABLE, ("pk", "sk"), alias="change_table")
    )
    resources = translated["Resources"]

    # THEN each Glue table is one of them, column for column, property for property
    assert len(rendered) == len(GLUE_TABLES)
    for logical_id, definition in zip(GLUE_TABLES, rendered, strict=True):
        resource = resources[logical_id]
        assert resource["Type"] == "AWS::Glue::Table"
        assert resource["Condition"] == "HasAthenaTables"  # the database named, over ChangeTable
        assert resource["Properties"]["DatabaseName"] == {"Ref": "LakeDatabase"}
        table_input = _resolved(resource["Properties"]["TableInput"], since)
        assert json.dumps(table_input, sort_keys=True) == json.dumps(definition.glue_input(), sort_keys=True)


def test_glue_database_only_when_a_name_is_given(translated: dict[str, Any]) -> None:
    # GIVEN the parameter and its condition
    parameter = translated["Parameters"]["AthenaDatabaseName"]
    condition = translated["Conditions"]["HasAthenaDatabase"]

    # THEN the default creates nothing, and the database is named by the parameter
    assert parameter["Default"] == ""
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AthenaDatabaseName"}, ""]}]}
    # (the Glue tables only over the stack's own table: an attached table's keys are not in the template)
    assert translated["Conditions"]["HasAthenaTables"] == {
        "Fn::And": [{"Condition": "HasAthenaDatabase"}, {"Condition": "CreatesChangeTable"}]
    }
    database = translated["Resources"]["LakeDatabase"]
    assert database["Condition"] == "HasAthenaDatabase"
    assert database["Properties"]["DatabaseInput"]["Name"] == {"Ref": "AthenaDatabaseName"}
    glue = {
        name
        for name, resource in translated["Resources"].items()
        if resource["Type"].startswith("AWS::Glue::")
    }
    assert glue == {"LakeDatabase", *GLUE_TABLES}

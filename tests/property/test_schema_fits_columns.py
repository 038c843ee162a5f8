"""What the stream consumer accepts under a table's JSON Schema, that table's Parquet writer holds.

Each example: numbers near the bounds of bounded attributes (DECIMAL columns), off by amounts down
to 10**-40 that a float cannot tell apart, in several notations, each as a real stream record. The
consumer's verdict must be the schema's, decided exactly (an independent oracle in fractions), and
every record it accepts must become a Parquet row holding exactly its digits (``ColumnLayout.row``,
then DuckDB's ``COPY`` in ``ParquetWriter``, read back).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Context, Decimal
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from changelake.exceptions import ConversionError, SchemaViolation
from changelake.formats.change_line import ChangeLine, to_change_line
from changelake.ingest.schema import SchemaRegistry
from changelake.snapshot.columns import ColumnLayout
from changelake.snapshot.lines import change_entry, exact_loads
from changelake.snapshot.parquet import ParquetWriter
from changelake_testing.stream_records import stream_record

SCHEMA = {
    "type": "object",
    "properties": {
        "pk": {"type": "string"},
        "amount": {"type": "number", "multipleOf": 0.01, "minimum": -1000000, "maximum": 1000000},
        "quantity": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 1000000},
        "big": {"type": "integer", "minimum": -(10**38 - 1), "maximum": 10**38 - 1},
        "ratio": {"type": "number", "multipleOf": 0.0001, "minimum": 0, "maximum": 1},
    },
}


def _multiple(value: Fraction, step: Fraction) -> bool:
    return (value / step).denominator == 1


#: The schema's verdict on each attribute, in exact fractions (not ``number_rules``).
ALLOWS: dict[str, Callable[[Fraction], bool]] = {
    "amount": lambda v: -(10**6) <= v <= 10**6 and _multiple(v, Fraction(1, 100)),
    "quantity": lambda v: 0 < v < 10**6 and v.denominator == 1,
    "big": lambda v: abs(v) <= 10**38 - 1 and v.denominator == 1,
    "ratio": lambda v: 0 <= v <= 1 and _multiple(v, Fraction(1, 10_000)),
}
EDGES = {
    "amount": ["-1000000", "1000000", "0", "0.01", "-0.01", "12.34"],
    "quantity": ["0", "1", "999999", "1000000"],
    "big": ["99999999999999999999999999999999999999", "-99999999999999999999999999999999999999", "0"],
    "ratio": ["0", "1", "0.0001", "0.5"],
}
#: Wide enough for every sum below: an edge of 38 digits plus an offset down to 10**-40.
_EXACT = Context(prec=100)


@st.composite
def near_an_edge(draw: st.DrawFn) -> tuple[str, str]:
    """An attribute and the text of a number near one of its edges (maybe past it)."""
    attribute = draw(st.sampled_from(sorted(EDGES)))
    edge = Decimal(draw(st.sampled_from(EDGES[attribute])))
    offset = Decimal(draw(st.integers(-99, 99))).scaleb(draw(st.integers(-40, 2)), _EXACT)
    number = _EXACT.add(edge, offset)
    notation = draw(st.sampled_from(["str", "fixed", "exponent"]))
    if notation == "fixed":
        return attribute, format(number, "f")
    if notation == "exponent":
        return attribute, format(number, "E")
    return attribute, str(number)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> SchemaRegistry:
    folder = tmp_path_factory.mktemp("schemas")
    (folder / "orders.json").write_text(json.dumps(SCHEMA))
    return SchemaRegistry.from_directory(folder)


def _refused_at(registry: SchemaRegistry, change: ChangeLine) -> str | None:
    """The path the consumer names refusing ``change``; None if it accepts it."""
    try:
        registry.check(change)
    except SchemaViolation as exc:
        return exc.path
    return None


@settings(max_examples=40)
@given(numbers=st.lists(near_an_edge(), min_size=1, max_size=12))
@example(numbers=[("amount", "1.2300000000000000001")])
@example(numbers=[("amount", "1000000.000000000001")])
@example(numbers=[("quantity", "1.0000000000000000001")])
@example(numbers=[("quantity", "1.0"), ("quantity", "1E+2"), ("amount", "1000000"), ("amount", "1.23")])
def test_what_the_consumer_accepts_the_parquet_writer_holds_exactly(
    registry: SchemaRegistry, tmp_path_factory: pytest.TempPathFactory, numbers: list[tuple[str, str]]
) -> None:
    # GIVEN stream records, each with one number near an edge of its attribute's bounds
    layout = ColumnLayout.from_schema(SCHEMA)
    writer = ParquetWriter(layout, tmp_path_factory.mktemp("parquet"))
    accepted: dict[str, tuple[str, Decimal]] = {}
    for index, (attribute, text) in enumerate(numbers):
        keys = {"pk": {"S": f"p{index}"}}
        record = stream_record(
            table="orders",
            event_name="INSERT",
            sequence_number=index + 1,
            created=1.0,
            keys=keys,
            new_image={**keys, attribute: {"N": text}},
        )
        try:
            change = to_change_line(record)
        except ConversionError:
            continue  # more digits than DynamoDB keeps: no stream carries it

        # WHEN the consumer checks it
        refused_at = _refused_at(registry, change)

        # THEN its verdict is the schema's, exactly (a refusal naming the attribute)
        verdict = refused_at is None
        assert verdict == ALLOWS[attribute](Fraction(Decimal(text))), (attribute, text, verdict)
        assert refused_at in (None, f"new_image.{attribute}")
        if verdict:
            # AND what it accepted becomes a row of the table's Parquet columns, its digits exact
            key, _, _, line = change_entry(change.line, table="orders", day=change.event_time[:10])
            writer.add(layout.row(key, exact_loads(line)))
            accepted[f"p{index}"] = (attribute, Decimal(text))
    written = writer.finish()
    connection = duckdb.connect()
    rows = connection.execute("SELECT * FROM read_parquet(?)", [str(written.path)]).fetchall()
    names = [column[0] for column in connection.description or []]
    for row in rows:
        values = dict(zip(names, row, strict=True))
        attribute, number = accepted[json.loads(str(values["keys"]))["pk"]]
        assert values[attribute] == number
    assert len(rows) == len(accepted)
    Path(written.path).unlink()

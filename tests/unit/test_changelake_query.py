"""``changelake query``: every DuckDB type prints as valid JSON, and as text, exactly as DuckDB holds it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from changelake_cli.errors import Exit
from changelake_cli.main import main
from changelake_cli.output import Output

ROOT = Path(__file__).resolve().parents[2]
#: A zone far from UTC: a time converted through the machine's zone is 5 hours off.
NEW_YORK = "America/New_York"


def strict_json(text: str) -> Any:
    """``text`` parsed as JSON proper: Python's parser takes NaN and Infinity, which JSON has not."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def query(lake: Path, sql: str, *flags: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["query", "--lake", str(lake), sql, *flags], out=Output(out=out, err=err, environ={}))
    return code, out.getvalue(), err.getvalue()


def query_json(lake: Path, expression: str) -> Any:
    code, out, err = query(lake, f"SELECT {expression} AS v", "--json")
    assert (code, err) == (Exit.OK, "")
    return strict_json(out)[0]["v"]


# (the SQL of a value, what --json prints for it)
EVERY_TYPE = [
    ("NULL", None),
    ("true", True),
    ("(-127 - 1)::TINYINT", -128),
    ("(-32767 - 1)::SMALLINT", -32768),
    ("(-2147483647 - 1)::INTEGER", -2147483648),
    ("(-9223372036854775807 - 1)::BIGINT", -(2**63)),
    ("(-170141183460469231731687303715884105727::HUGEINT - 1)", -(2**127)),
    ("255::UTINYINT", 255),
    ("65535::USMALLINT", 65535),
    ("4294967295::UINTEGER", 2**32 - 1),
    ("18446744073709551615::UBIGINT", 2**64 - 1),
    ("340282366920938463463374607431768211455::UHUGEINT", 2**128 - 1),
    ("'99999999999999999999999999999999999999999'::BIGNUM", "99999999999999999999999999999999999999999"),
    ("0.1::FLOAT", 0.1),
    ("0.1::DOUBLE", 0.1),
    ("'nan'::DOUBLE", "NaN"),
    ("'inf'::DOUBLE", "Infinity"),
    ("'-inf'::DOUBLE", "-Infinity"),
    ("'nan'::FLOAT", "NaN"),
    ("'-inf'::FLOAT", "-Infinity"),
    ("'12345678901234567890123456.789012345678'::DECIMAL(38,12)", "12345678901234567890123456.789012345678"),
    ("0.0000001::DECIMAL(18,10)", "0.0000001000"),
    ("'Grüße \"x\"'", 'Grüße "x"'),
    ("from_hex('5C7800FF41')", "XHgA/0E="),
    ("DATE '2026-11-22'", "2026-11-22"),
    ("'infinity'::DATE", "infinity"),
    ("DATE '-0044-03-15'", "0045-03-15 (BC)"),
    ("TIME '12:00:00.123456'", "12:00:00.123456"),
    ("TIMETZ '12:00:00+05:30'", "12:00:00+05:30"),
    ("TIMESTAMP '2026-11-22 12:00:00.123456'", "2026-11-22 12:00:00.123456"),
    ("'infinity'::TIMESTAMP", "infinity"),
    ("TIMESTAMPTZ '2026-11-22 12:00:00+09'", "2026-11-22 03:00:00+00"),
    ("TIMESTAMP_NS '2026-11-22 12:00:00.123456789'", "2026-11-22 12:00:00.123456789"),
    ("TIMESTAMP_MS '2026-11-22 12:00:00.123'", "2026-11-22 12:00:00.123"),
    ("TIMESTAMP_S '2026-11-22 12:00:00'", "2026-11-22 12:00:00"),
    ("INTERVAL '1 month 2 days 3 seconds'", "1 month 2 days 00:00:03"),
    ("'a7f7f8e2-4f5e-4d3c-9a1b-2c3d4e5f6a7b'::UUID", "a7f7f8e2-4f5e-4d3c-9a1b-2c3d4e5f6a7b"),
    ("'0101'::BIT", "0101"),
    ("'y'::ENUM('x', 'y')", "y"),
    ("'{\"n\": 1.123456789012345678901}'::JSON", '{"n": 1.123456789012345678901}'),
    ("[1, NULL]", [1, None]),
    ("[TIMESTAMP_NS '2026-11-22 12:00:00.123456789']", ["2026-11-22 12:00:00.123456789"]),
    ("[0.1::FLOAT, 'nan']::FLOAT[2]", [0.1, "NaN"]),
    (
        "{'a': 0.1::FLOAT, 'b\"q': INTERVAL 1 MONTH, 'c': 1.50::DECIMAL(3,2)}",
        {"a": 0.1, 'b"q': "1 month", "c": "1.50"},
    ),
    ("row(1, TIME '01:00')", [1, "01:00:00"]),
    ("MAP {1: TIME '01:00', 2: NULL}", {"1": "01:00:00", "2": None}),
    ("MAP {[1, 2]: from_hex('FF')}", {"[1, 2]": "/w=="}),
    ("union_value(k := DATE '2026-01-01')::UNION(k DATE, v INTEGER)", "2026-01-01"),
    ("union_value(v := 7)::UNION(k DATE, v INTEGER)", 7),
]


@pytest.mark.parametrize(("sql", "printed"), EVERY_TYPE, ids=[sql for sql, _ in EVERY_TYPE])
def test_json_prints_every_duckdb_type_as_valid_json_exactly(tmp_path: Path, sql: str, printed: Any) -> None:
    # GIVEN a value of one DuckDB type  WHEN `changelake query --json` selects it
    # THEN it prints as valid JSON, every digit and fraction of a second as DuckDB holds it
    assert query_json(tmp_path, sql) == printed


def test_a_float_keeps_the_digits_duckdb_shows_not_its_double(tmp_path: Path) -> None:
    # GIVEN 0.1 as a FLOAT (0.10000000149011612 once widened to a double)
    code, out, _ = query(tmp_path, "SELECT 0.1::FLOAT AS f", "--json")
    # THEN the number printed is DuckDB's 0.1
    assert code == Exit.OK
    assert '"f": 0.1\n' in out


def test_the_text_table_shows_duckdbs_own_text(tmp_path: Path) -> None:
    # GIVEN values Python would change: nanoseconds, a month, an instant, bytes, an infinite day
    sql = (
        "SELECT TIMESTAMP_NS '2026-11-22 12:00:00.123456789' AS ns, INTERVAL 1 MONTH AS iv, "
        "TIMESTAMPTZ '2026-11-22 12:00:00+00' AS tz, from_hex('5C00FF41') AS b, 'infinity'::DATE AS d, "
        "NULL AS n"
    )
    # WHEN the query prints as a table
    code, out, err = query(tmp_path, sql)
    # THEN each shows as DuckDB's text of it
    assert (code, err) == (Exit.OK, "")
    assert out.splitlines()[2].split("  ") == [
        "2026-11-22 12:00:00.123456789",
        "1 month",
        "2026-11-22 12:00:00+00",
        "\\x5C\\x00\\xFFA",
        "infinity",
        "NULL",
    ]


def test_repeated_column_names_each_keep_their_value(tmp_path: Path) -> None:
    code, out, _ = query(tmp_path, "SELECT 1 AS a, 2 AS a, 3 AS a_1", "--json")
    assert code == Exit.OK
    assert strict_json(out) == [{"a": 1, "a_1": 2, "a_1_1": 3}]


def test_a_statement_without_rows_prints_none(tmp_path: Path) -> None:
    code, out, _ = query(tmp_path, "SET threads = 1", "--json")
    assert (code, strict_json(out)) == (Exit.OK, [])


def test_times_print_as_the_query_returned_them_in_any_time_zone(tmp_path: Path) -> None:
    # GIVEN a machine in New York (TZ, read by Python and by DuckDB alike)
    environment = {**os.environ, "TZ": NEW_YORK}
    sql = (
        "SELECT TIMESTAMP '2026-11-22 12:00:00' AS naive, TIMESTAMPTZ '2026-11-22 02:00:00+00' AS instant, "
        "TIMESTAMPTZ '2026-11-22 02:00:00+00'::DATE AS day"
    )
    # WHEN the command prints a TIMESTAMP (no zone) and a TIMESTAMPTZ, as JSON and as text
    ran = [
        subprocess.run(
            [sys.executable, "-m", "changelake_cli", "query", "--lake", str(tmp_path), sql, *flags],
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
            check=False,
            timeout=120,
        )
        for flags in (["--json"], [])
    ]
    # THEN the TIMESTAMP is the one written, no zone added or applied; the instant, and its day, in UTC
    assert [r.returncode for r in ran] == [Exit.OK, Exit.OK], [r.stderr for r in ran]
    assert strict_json(ran[0].stdout) == [
        {"naive": "2026-11-22 12:00:00", "instant": "2026-11-22 02:00:00+00", "day": "2026-11-22"}
    ]
    assert ran[1].stdout.splitlines()[2].split("  ") == [
        "2026-11-22 12:00:00",
        "2026-11-22 02:00:00+00",
        "2026-11-22",
    ]

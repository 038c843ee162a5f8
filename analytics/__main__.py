"""``python -m analytics athena --bucket B --table orders:pk,sk`` prints the Athena DDL;
``python -m analytics duckdb LAKE_DIR`` prints the DuckDB views over a local lake."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from analytics.athena import script
from analytics.duck import views_sql
from analytics.lake import DEFAULT_SINCE, DefinitionError, Lake, parse_table_option

DEFAULT_SCHEMA_DIR = Path("shared/schemas")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    athena = commands.add_parser("athena", help="print the Athena (engine 3) DDL: tables and views")
    athena.add_argument("--bucket", required=True, help="the DataBucket")
    athena.add_argument("--database", default="changelake", help="Athena database (default changelake)")
    athena.add_argument(
        "--table",
        action="append",
        required=True,
        help="a DynamoDB table: NAME[:KEY[,KEY]][=ATHENA_NAME] (key attributes, default pk,sk); repeatable",
    )
    athena.add_argument(
        "--only", choices=("tables", "views"), help="print only these (the template creates the tables)"
    )
    athena.add_argument("--raw-prefix", default="raw")
    athena.add_argument("--compacted-prefix", default="compacted")
    athena.add_argument("--snapshot-prefix", default="snapshot")
    athena.add_argument(
        "--since", type=date.fromisoformat, default=DEFAULT_SINCE, help="first day partition projection lists"
    )
    athena.add_argument(
        "--schema-dir", type=Path, default=DEFAULT_SCHEMA_DIR, help="per-table JSON Schemas (<table>.json)"
    )
    duck = commands.add_parser("duckdb", help="print the DuckDB views over a local lake folder")
    duck.add_argument("lake_dir", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "duckdb":
            sys.stdout.write(views_sql(arguments.lake_dir))
            return 0
        lake = Lake(
            bucket=arguments.bucket,
            database=arguments.database,
            raw_prefix=arguments.raw_prefix,
            compacted_prefix=arguments.compacted_prefix,
            snapshot_prefix=arguments.snapshot_prefix,
            since=arguments.since,
        )
        schema_dir = arguments.schema_dir if arguments.schema_dir.is_dir() else None
        tables = [parse_table_option(option, schema_dir) for option in arguments.table]
        sys.stdout.write(script(lake, tables, only=arguments.only))
    except DefinitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

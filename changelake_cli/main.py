"""``changelake``: operate a changelake stack, in AWS or local.

Exit codes: 0 ok; 1 something needs attention (dead letters, lost ranges, an alarm, a failed run,
an hour left uncompacted past the look-back window); 2 usage (a bad option, an unknown table, a
day in the future); 3 the stack cannot be reached (no credentials, no such stack, no endpoint).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from changelake.exceptions import DeliveryError
from changelake_cli.errors import CliError, Exit, UsageError
from changelake_cli.output import Output
from changelake_cli.stack import Aws, Target, sam_defaults

DEFAULT_UI_PORT = 8765


def _global_options(*, suppress: bool) -> argparse.ArgumentParser:
    """--stack, --region, ... : before the command, and (``suppress``: no defaults) after it."""
    options = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    options.add_argument("--stack", default=default(None), help="stack name (default: samconfig.toml's)")
    options.add_argument("--config-env", default=default("default"), help="samconfig.toml environment")
    options.add_argument("--region", default=default(None), help="AWS Region (default: samconfig.toml's)")
    options.add_argument("--profile", default=default(None), help="AWS profile")
    options.add_argument(
        "--endpoint", default=default(None), help="local endpoint, e.g. http://127.0.0.1:4566"
    )
    options.add_argument("--json", action="store_true", default=default(False), help="print JSON for scripts")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="changelake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(suppress=False)],
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    after = _global_options(suppress=True)  # the same options after the command name, too

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, help=help_text, parents=[after])

    command("status", "data flow, hours per layer, queues, alarms, last runs")
    history = command("history", "compaction, snapshot and redrive runs, newest first")
    history.add_argument("--table")
    history.add_argument("--days", type=int, default=7)

    compact = command("compact", "run CompactionFunction for a day (or one hour)")
    compact.add_argument("--table", required=True)
    compact.add_argument("--dt", required=True, metavar="YYYY-MM-DD")
    compact.add_argument("--hour", metavar="HH")

    snapshot = command("snapshot", "run SnapshotFunction for a day, or a bootstrap")
    snapshot.add_argument("--table", required=True)
    which = snapshot.add_mutually_exclusive_group(required=True)
    which.add_argument("--dt", metavar="YYYY-MM-DD")
    which.add_argument("--bootstrap", metavar="s3://.../manifest-summary.json")

    attach = command("attach", "follow one more table: check it, deploy with its stream, bootstrap it")
    attach.add_argument("--table", required=True)
    attach.add_argument(
        "--enable-stream", action="store_true", help="turn its stream on (NEW_AND_OLD_IMAGES)"
    )
    attach.add_argument("--deploy", action="store_true", help="run the deploy, then the bootstrap")

    bootstrap = command("bootstrap", "export a table's items from before its stream and start its snapshots")
    bootstrap.add_argument("--table", required=True)

    redrive = command("redrive", "run DlqRedriveFunction (dead letters, failed stream ranges)")
    redrive.add_argument("--dry-run", action="store_true")
    redrive.add_argument("--max", type=int, dest="max_messages")

    download = command("download", "fetch a partition with its Hive layout")
    download.add_argument("--table", required=True)
    download.add_argument("--dt", required=True, metavar="YYYY-MM-DD")
    download.add_argument("--hour", metavar="HH")
    download.add_argument("--layer", default="compacted", choices=("raw", "compacted", "snapshot"))
    download.add_argument("--to", type=Path, required=True, metavar="DIR")

    query = command("query", "DuckDB SQL over a local lake (views: changes, snapshot)")
    query.add_argument("sql")
    query.add_argument("--lake", type=Path, default=Path("lake"), help="the lake folder (default: lake)")

    ui = command("ui", "serve the status page on 127.0.0.1")
    ui.add_argument("--port", type=int, default=DEFAULT_UI_PORT, help=f"default {DEFAULT_UI_PORT}; 0: any")
    return parser


def target_of(args: argparse.Namespace) -> Target:
    defaults = sam_defaults(args.config_env)
    stack = args.stack or defaults.stack
    if not stack:
        raise UsageError("no stack: pass --stack or set stack_name in samconfig.toml")
    return Target(
        stack=stack, region=args.region or defaults.region, profile=args.profile, endpoint=args.endpoint
    )


def main(argv: Sequence[str] | None = None, *, out: Output | None = None) -> int:
    args = build_parser().parse_args(argv)
    output = out or Output(as_json=args.json)
    output.as_json = args.json
    try:
        return int(_dispatch(args, output))
    except CliError as exc:
        output.message(f"changelake: {exc.message}")
        return int(exc.exit_code)
    except DeliveryError as exc:  # any AWS call the command made, mapped by changelake.exceptions
        output.message(f"changelake: cannot reach the stack: {exc}")
        return int(Exit.UNREACHABLE)
    except KeyboardInterrupt:
        output.message("changelake: interrupted")
        return 130


def _dispatch(args: argparse.Namespace, output: Output) -> Exit:
    from changelake_cli import commands

    if args.command == "query":
        return commands.query(output, args)
    handlers: dict[str, Callable[[Any, Output, argparse.Namespace], Exit]] = {
        "status": commands.status,
        "history": commands.history,
        "compact": commands.compact,
        "snapshot": commands.snapshot,
        "bootstrap": commands.bootstrap,
        "attach": commands.attach,
        "redrive": commands.redrive,
        "download": commands.download,
        "ui": commands.ui,
    }
    operator = commands.connect(Aws(target_of(args)))
    try:
        return handlers[args.command](operator, output, args)
    finally:
        for note in operator.notes:
            output.message(f"changelake: note: {note}")


if __name__ == "__main__":
    sys.exit(main())

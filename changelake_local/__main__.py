"""``python -m changelake_local run|invoke|serve|env-json`` (see docs/local-mode.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from changelake_local.errors import LocalRunError

if TYPE_CHECKING:
    from changelake_local.deploy import DeployedStack


def _parameters(values: list[str]) -> dict[str, str]:
    result = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep:
            raise SystemExit(f"--parameter takes NAME=VALUE, not {value!r}")
        result[name] = setting
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m changelake_local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="stream the whole pipeline locally, then drain, compact and verify")
    run.add_argument("--duration", type=float, default=0, help="seconds of writing (0: until Ctrl-C)")
    run.add_argument("--rate", type=float, default=50, help="changes per second written to the tables")
    run.add_argument(
        "--tables",
        type=int,
        default=0,
        help="follow this many tables of your own, made outside the stack and bootstrapped with "
        "changelake bootstrap (0: the stack's own ChangeTable)",
    )
    run.add_argument(
        "--night", type=float, default=60, help="seconds of a local 'night' (compaction schedule)"
    )
    run.add_argument(
        "--port", type=int, default=None, help="moto server port (default 4566; 0 = any free port)"
    )
    run.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", help="template parameter"
    )
    run.add_argument(
        "--template-defaults",
        action="store_true",
        help="deploy with the template's defaults (no local batching windows: aggregator 5 s, stream 1 s)",
    )
    run.add_argument("--item-bytes", type=int, default=1024)
    run.add_argument(
        "--pieces",
        type=int,
        default=0,
        help="hand every nightly day and hour to the fan-out state machine, in this many pieces "
        "(0: the template's thresholds)",
    )
    run.add_argument("--lake", type=Path, default=Path("lake"), help="where the lake lands on local disk")
    run.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    run.add_argument("--json", type=Path, default=None, help="also write the summary as JSON to this file")
    run.add_argument(
        "--faults",
        default="none",
        metavar="PROFILE",
        help="inject faults while writing (none, flaky, throttled, crashy; docs/local-mode.md)",
    )
    run.add_argument("--fault-seed", type=int, default=1, help="seed of the fault schedule")

    invoke = commands.add_parser("invoke", help="invoke one function of the template with an event file")
    invoke.add_argument("function", help="logical ID, e.g. AggregatorFunction")
    invoke.add_argument("--event", type=Path, required=True)
    invoke.add_argument("--endpoint", default=None, help="a running local stack (default: start one)")

    serve = commands.add_parser("serve", help="start the endpoint and deploy the stack, until Ctrl-C")
    serve.add_argument("--port", type=int, default=None)

    commands.add_parser("env-json", help="rewrite events/env.json from the deployed stack's names")

    args = parser.parse_args(argv)
    # SIGTERM (timeout, CI, kill) unwinds like Ctrl-C, so the moto child is stopped on the way out
    signal.signal(signal.SIGTERM, _terminate)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "invoke":
            from changelake_local.invoke import invoke_function

            print(
                json.dumps(
                    invoke_function(args.function, args.event, endpoint=args.endpoint), indent=2, default=str
                )
            )
            return 0
        if args.command == "serve":
            from changelake_local.invoke import serve as serve_stack

            return serve_stack(args.port)
        from changelake_local.invoke import write_env_json

        print(f"wrote {write_env_json()}")
    except LocalRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _announce(stack: DeployedStack) -> None:
    """The ``changelake`` line for the stack just deployed, on the port its endpoint listens on."""
    from changelake_local.invoke import changelake_command

    print(
        f"operate the running stack with: {changelake_command(stack.endpoint, stack.name)}",
        file=sys.stderr,
        flush=True,
    )


def _run(args: argparse.Namespace) -> int:
    from changelake_local.display import LiveDisplay
    from changelake_local.endpoint import DEFAULT_PORT
    from changelake_local.faults import PROFILES, FaultInjector, injecting
    from changelake_local.pipeline import (
        LOCAL_PARAMETERS,
        RunOptions,
        fan_out_parameters,
        print_summary,
        run_pipeline,
        to_json,
    )

    parameters = {**({} if args.template_defaults else LOCAL_PARAMETERS), **_parameters(args.parameter)}
    stop = threading.Event()
    interrupts = 0

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(
                "\nCtrl-C: stopping the writes, draining and verifying (Ctrl-C again to abort)",
                file=sys.stderr,
            )
            stop.set()
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
    if args.tables < 0:
        raise SystemExit(f"--tables takes a number of tables, 0 or more, not {args.tables}")
    if args.faults not in PROFILES:
        raise SystemExit(f"--faults takes one of {', '.join(PROFILES)}, not {args.faults!r}")
    if args.pieces:
        try:
            fan_out_parameters(args.pieces)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    injector = FaultInjector(PROFILES[args.faults], seed=args.fault_seed)
    with LiveDisplay(force_plain=args.plain) as display, injecting(injector) as hooks:
        options = RunOptions(
            hooks=hooks,
            duration=args.duration,
            rate=args.rate,
            tables=args.tables,
            night=args.night,
            port=DEFAULT_PORT if args.port is None else args.port,
            parameters=parameters,
            lake_dir=args.lake,
            item_bytes=args.item_bytes,
            pieces=args.pieces,
        )
        summary = run_pipeline(options, on_progress=display, stop_requested=stop, on_deployed=_announce)
    print_summary(summary)
    print(f"faults ({args.faults}): {injector.total} injected {dict(sorted(injector.injected.items()))}")
    if args.json:
        args.json.write_text(to_json(summary))
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())

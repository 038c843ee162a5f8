"""The commands: each gathers through the shared functions, then prints a table or JSON."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from changelake.exceptions import DeliveryError
from changelake.snapshot.scan_export import SCAN_CONCURRENCY, scan_plan
from changelake_cli import attach as attaching
from changelake_cli import bootstrap as bootstraps
from changelake_cli import invoke as invocations
from changelake_cli import render
from changelake_cli.download import PROGRESS_FROM_BYTES, Progress, partition_ref
from changelake_cli.download import download as fetch
from changelake_cli.errors import DeployError, Exit, UsageError
from changelake_cli.output import Output, Styled
from changelake_cli.query import run_query
from changelake_cli.stack import Aws
from changelake_cli.status import Operator, collect_status
from changelake_cli.status import history as run_history


def connect(aws: Aws) -> Operator:
    return Operator.connect(aws)


def invoker_of(operator: Operator) -> invocations.Invoker:
    target = operator.aws.target
    if target.is_local:
        assert target.endpoint is not None
        return invocations.LocalInvoker(target.endpoint, target.stack)
    return invocations.LambdaInvoker(client=operator.aws.client("lambda", invoke=True))


def status(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    result = collect_status(operator)
    if o.as_json:
        o.json(result)
    else:
        render.render_status(o, result)
    return Exit.ATTENTION if result.attention else Exit.OK


def history(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    if not 1 <= args.days <= 400:
        raise UsageError(f"--days must be 1 to 400, not {args.days}")
    if args.table is not None:
        operator.check_table(args.table)
    runs = run_history(operator, days=args.days, table=args.table)
    if o.as_json:
        o.json(runs)
    else:
        render.render_runs(
            o, runs, f"Runs of the last {args.days} day(s)" + (f", table {args.table}" if args.table else "")
        )
    return Exit.OK


def _run(
    operator: Operator, o: Output, logical_id: str, event: dict[str, Any], attention: bool = False
) -> Exit:
    o.message(f"invoking {logical_id} with {event} ...")
    invocation = invocations.invoke(operator, invoker_of(operator), logical_id, event)
    if o.as_json:
        o.json(invocation)
    else:
        render.render_invocation(o, invocation)
    failed = not invocation.ok or (attention and invocations.redrive_needs_attention(invocation.result))
    return Exit.ATTENTION if failed else Exit.OK


def compact(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    event = invocations.compaction_event(operator, args.table, args.dt, args.hour)
    return _run(operator, o, "CompactionFunction", event)


def snapshot(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    operator.stack.function("SnapshotFunction")
    event = invocations.snapshot_event(operator, args.table, args.dt, args.bootstrap)
    return _run(operator, o, "SnapshotFunction", event)


def _source_table(operator: Operator, name: str) -> tuple[bootstraps.Tables, bootstraps.SourceTable]:
    tables = bootstraps.Tables(client=operator.aws.client("dynamodb"))
    try:
        return tables, tables.describe(name)
    except DeliveryError as exc:
        if exc.code == "ResourceNotFoundException":
            raise UsageError(f"no DynamoDB table {name!r} at {operator.aws.target.where()}") from exc
        raise


def bootstrap(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    """Export the table (found or started) or, without point-in-time recovery, scan it; then hand
    the export to SnapshotFunction."""
    tables, table = _source_table(operator, args.table)
    stack = operator.stack
    bootstraps.check_followed(table, stack.name, stack.outputs)
    stack.function("SnapshotFunction")
    if table.point_in_time_recovery:
        method, detail, summary_url = _export(operator, o, tables, table)
    else:
        method, detail, summary_url = _scan(operator, o, table)
    invocation = None
    if summary_url is not None:
        event = {"table": table.name, "bootstrap": summary_url}
        invocation = invocations.invoke(operator, invoker_of(operator), "SnapshotFunction", event)
    if o.as_json:
        o.json({"method": method, method: detail, "snapshot": invocation})
    elif invocation is not None:
        render.render_invocation(o, invocation)
    return Exit.OK if invocation is not None and invocation.ok else Exit.ATTENTION


def _export(
    operator: Operator, o: Output, tables: bootstraps.Tables, table: bootstraps.SourceTable
) -> tuple[str, Any, str | None]:
    def progress(state: bootstraps.ExportState, elapsed: float) -> None:
        o.message(f"export {state.arn}: {state.status} after {elapsed:.0f} s")

    outcome = bootstraps.export_table(
        tables, table, operator.stack.bucket, progress=progress, sleep=time.sleep, monotonic=time.monotonic
    )
    if not o.as_json:
        reused = "an export already there" if outcome.resumed else "a new export"
        o.line(f"table {table.name}: {reused}, {outcome.export.status} ({outcome.export.arn})")
        if outcome.export.failure:
            o.line(Styled(f"export failed: {outcome.export.failure}", "bad"))
    done = outcome.export.status == "COMPLETED"
    return "export", outcome, outcome.export.summary_url() if done else None


def _scan(operator: Operator, o: Output, table: bootstraps.SourceTable) -> tuple[str, Any, str | None]:
    """The Scan's segments run by SnapshotFunction (as many at once as it may run), then its commit."""
    started = operator.clock()
    plan = scan_plan(table.size_bytes, table.provisioned_read_units)
    o.message(
        f"table {table.name} has no point-in-time recovery: scanning it in {plan.segments} segment(s) "
        f"at {plan.read_units_per_second * SCAN_CONCURRENCY:.0f} read units/s (about {plan.seconds:.0f} s)"
    )
    if bootstraps.crosses_midnight(started, plan.seconds):
        o.message("changelake: note: the Scan may end after midnight UTC; exact only within one day")
    segments, commit = bootstraps.scan_events(table.name, started, plan)
    invoker = invoker_of(operator)
    workers = 1 if operator.aws.target.is_local else SCAN_CONCURRENCY  # the local functions share a process

    def run(event: dict[str, Any]) -> invocations.Invocation:
        done = invocations.invoke(operator, invoker, "SnapshotFunction", event)
        o.message(f"segment {event['scan']['segment'] + 1} of {plan.segments}: {done.error or 'done'}")
        return done

    with ThreadPoolExecutor(max_workers=workers) as pool:
        ran = list(pool.map(run, segments))
    failed = [done for done in ran if not done.ok]
    committed = None if failed else invocations.invoke(operator, invoker, "SnapshotFunction", commit)
    detail = {"plan": plan, "segments": ran, "commit": committed}
    if committed is None or not committed.ok:
        if not o.as_json:
            why = failed[0].error if failed else committed.error if committed else None
            o.line(Styled(f"scan failed: {why}", "bad"))
        return "scan", detail, None
    return "scan", detail, str(committed.result["bootstrap"])


def attach(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    """Check the table, print or run the deploy that follows it too, then bootstrap it."""
    tables, table = _source_table(operator, args.table)
    if args.enable_stream and attaching.stream_problem(table) is not None:
        tables.enable_stream(table.name, had_stream=table.stream_arn is not None)
        table = tables.describe(table.name)
        o.message(f"changelake: the stream of {table.name} is on ({table.view_type}): {table.stream_arn}")
    stack = operator.stack
    own_stream = stack.outputs.get("ChangeTableStreamArn") if "ChangeTable" in stack.physical else None
    plan = attaching.plan_attach(table, stack.outputs, own_stream)
    command = plan.printable(stack.name, None if operator.aws.target.is_local else operator.aws.region)
    if plan.drops_own_table is not None and not plan.already_followed:
        o.message(
            f"changelake: note: with SourceStreamArns set the stack no longer creates its own table "
            f"{stack.physical['ChangeTable']}: the deploy deletes it (its changes stay in the lake)"
        )
    if not plan.point_in_time_recovery:
        o.message(f"changelake: note: {table.name} has no point-in-time recovery: its bootstrap will Scan it")
    if not args.deploy:
        if o.as_json:
            o.json({"plan": plan, "deploy": None if plan.already_followed else command})
        elif plan.already_followed:
            o.line(f"stack {stack.name} already follows {table.name}; bootstrap it with:")
            o.line(f"  changelake bootstrap --table {table.name}")
        else:
            o.line(f"to follow {table.name}, deploy with its stream added to SourceStreamArns:")
            o.line(f"  {command}")
            o.line("(keep the value in parameter_overrides of samconfig.toml), then bootstrap it with:")
            o.line(f"  changelake bootstrap --table {table.name}")
        return Exit.OK
    if not plan.already_followed:
        _deploy(operator, o, plan)
    return bootstrap(connect(operator.aws), o, args)


def _deploy(operator: Operator, o: Output, plan: attaching.AttachPlan) -> None:
    """The deploy with the new SourceStreamArns: the local deploy's update on a local endpoint,
    ``sam build`` and ``sam deploy`` for AWS (which asks before it changes anything)."""
    target = operator.aws.target
    o.message(f"changelake: deploying {target.stack} with SourceStreamArns={plan.parameter} ...")
    if target.is_local:
        from changelake_local.deploy import deploy as local_deploy
        from changelake_local.errors import TemplateError

        assert target.endpoint is not None
        parameters = {**operator.stack.parameters, "SourceStreamArns": plan.parameter}
        try:
            local_deploy(
                target.endpoint, stack_name=target.stack, parameters=parameters, seed=None, update=True
            )
        except TemplateError as exc:
            raise DeployError(f"the local deploy failed: {exc}") from exc
        return
    for command in (["sam", "build"], plan.sam_command(target.stack, target.region)):
        if subprocess.run(command, check=False).returncode != 0:  # noqa: S603 - the SAM CLI, our arguments
            raise DeployError(f"`{' '.join(command[:2])}` failed; the stack is unchanged or as sam left it")


def redrive(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    event = invocations.redrive_event(args.dry_run, args.max_messages)
    return _run(operator, o, "DlqRedriveFunction", event, attention=True)


def _progress_bar(o: Output) -> Any:
    def start(total: int) -> Progress | None:
        if total < PROGRESS_FROM_BYTES or not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, DownloadColumn, TransferSpeedColumn
        from rich.progress import Progress as Bar

        bar = Bar(BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
        bar.start()
        task = bar.add_task("download", total=total)

        def advance(size: int) -> None:
            bar.update(task, advance=size)
            if bar.tasks[0].finished:
                bar.stop()

        return advance

    return start


def download(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    ref = partition_ref(operator, args.layer, args.table, args.dt, args.hour)
    result = fetch(operator.store, ref, args.to, on_start=_progress_bar(o))
    if o.as_json:
        o.json(result)
    else:
        render.render_download(o, result)
    return Exit.OK


def query(o: Output, args: argparse.Namespace) -> Exit:
    result = run_query(args.lake, args.sql, "json" if o.as_json else "text")
    if o.as_json:
        o.json(result.records())
    else:
        render.render_query(o, result)
    return Exit.OK


def ui(operator: Operator, o: Output, args: argparse.Namespace) -> Exit:
    from changelake_cli.web.server import serve

    serve(operator, invoker_of(operator), port=args.port, announce=o.message)
    return Exit.OK

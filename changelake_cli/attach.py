"""``changelake attach``: follow one more of the user's tables, by the ``SourceStreamArns`` parameter.

It checks the table (a stream with ``NEW_AND_OLD_IMAGES``; point-in-time recovery decides how the
bootstrap reads it), turns the stream on when asked (``--enable-stream``), and works out the new
parameter value: the streams the stack follows now plus this one. Then it prints the deploy
command, or runs it (``--deploy``: ``sam deploy`` for AWS, the local deploy for a local endpoint),
after which the bootstrap starts.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from changelake_cli.bootstrap import SourceTable, followed_streams
from changelake_cli.errors import UsageError

VIEW_TYPE = "NEW_AND_OLD_IMAGES"


@dataclass(frozen=True)
class AttachPlan:
    table: str
    stream_arn: str
    streams: list[str]  # the new SourceStreamArns
    already_followed: bool
    drops_own_table: str | None  # the stack's own ChangeTable, which the first attach replaces
    point_in_time_recovery: bool

    @property
    def parameter(self) -> str:
        return ",".join(self.streams)

    def sam_command(self, stack: str, region: str | None) -> list[str]:
        command = ["sam", "deploy", "--stack-name", stack]
        if region:
            command += ["--region", region]
        return [*command, "--parameter-overrides", f"SourceStreamArns={self.parameter}"]

    def printable(self, stack: str, region: str | None) -> str:
        return "sam build && " + shlex.join(self.sam_command(stack, region))


def stream_problem(table: SourceTable) -> str | None:
    """Why the table's stream cannot be followed as it is, or None."""
    if table.stream_arn is None:
        return (
            f"table {table.name} has no stream: changelake needs one with {VIEW_TYPE} "
            "(`--enable-stream` turns it on)"
        )
    if table.view_type != VIEW_TYPE:
        return (
            f"table {table.name} streams {table.view_type}, and changelake needs {VIEW_TYPE} (both images "
            "of every change): `--enable-stream` turns that stream off and a new one on (a new ARN; "
            "whatever reads the old one stops)"
        )
    return None


def plan_attach(table: SourceTable, outputs: dict[str, str], own_table_stream: str | None) -> AttachPlan:
    """The new ``SourceStreamArns``: what the stack follows now (not its own table's stream) and
    the table's stream. Refuses a stream changelake cannot follow."""
    problem = stream_problem(table)
    if problem is not None:
        raise UsageError(problem)
    assert table.stream_arn is not None
    current = [arn for arn in followed_streams(outputs) if arn != own_table_stream]
    followed = table.stream_arn in current
    return AttachPlan(
        table=table.name,
        stream_arn=table.stream_arn,
        streams=current if followed else [*current, table.stream_arn],
        already_followed=followed,
        drops_own_table=None if own_table_stream is None else "ChangeTable",
        point_in_time_recovery=table.point_in_time_recovery,
    )

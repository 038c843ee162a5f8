"""Running the deployed template's state machines on the local endpoint, and waiting for them.

The state machines are the template's own (``AWS::Serverless::StateMachine``, deployed through
moto's CloudFormation) and run on moto's ASL interpreter in the moto child
(changelake_local.step_functions); their Lambda tasks come back to this process, where
``serve_stack_functions`` registers the stack's in-process functions. ``LocalStateMachines``
starts an execution by logical ID and polls it (and its Map Runs) until it ends.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from changelake_local.aws import client
from changelake_local.deployed_stack import DeployedStack
from changelake_local.errors import LocalRunError, TemplateError
from changelake_local.functions import ExecutionEnvironments, LocalFunction
from changelake_local.invoke_server import LambdaInvokeServer

STATE_MACHINE_TYPE = "AWS::StepFunctions::StateMachine"
#: template.yaml's state machine that builds large days and busy hours in pieces.
FAN_OUT_STATE_MACHINE = "FanOutStateMachine"


def serve_stack_functions(
    server: LambdaInvokeServer, stack: DeployedStack, functions: Mapping[str, LocalFunction]
) -> dict[str, ExecutionEnvironments]:
    """Serve the stack's ``functions`` (by logical ID, each the first of its execution
    environments) to its state machines' Lambda tasks; their environments by logical ID."""
    environments = {logical_id: ExecutionEnvironments(function) for logical_id, function in functions.items()}
    server.serve({stack.physical(logical_id): envs for logical_id, envs in environments.items()})
    return environments


@dataclass(frozen=True)
class MapRunProgress:
    """One Map Run of an execution (DescribeMapRun): its status and item counts."""

    arn: str
    status: str
    max_concurrency: int
    total: int
    succeeded: int
    failed: int
    running: int
    pending: int

    @classmethod
    def of(cls, described: Mapping[str, Any]) -> MapRunProgress:
        items = described["itemCounts"]
        return cls(
            arn=described["mapRunArn"],
            status=described["status"],
            max_concurrency=int(described["maxConcurrency"]),
            total=items["total"],
            succeeded=items["succeeded"],
            failed=items["failed"] + items["timedOut"],
            running=items["running"],
            pending=items["pending"],
        )


@dataclass(frozen=True)
class Execution:
    """An execution as DescribeExecution reports it, with its Map Runs."""

    arn: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    map_runs: tuple[MapRunProgress, ...]

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"

    @property
    def failure(self) -> str:
        """Its error and cause in one line; a function error's cause (the runtime's JSON, its stack
        trace included) as its message only."""
        cause = self.cause or ""
        try:
            answered = json.loads(cause)
        except ValueError:
            answered = None
        if isinstance(answered, dict) and "errorMessage" in answered:
            cause = str(answered["errorMessage"])
        return f"{self.error}: {cause}" if cause else str(self.error)


class LocalStateMachines:
    """The stack's state machines: start an execution by logical ID, wait for its end."""

    def __init__(
        self,
        stack: DeployedStack,
        *,
        poll_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        sfn: Any = None,
    ) -> None:
        self.stack = stack
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self._sfn = sfn if sfn is not None else client("stepfunctions", stack.endpoint)

    def logical_ids(self) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.stack.template["Resources"].items()
            if resource["Type"] == STATE_MACHINE_TYPE and logical_id in self.stack.physical_ids
        ]

    def arn(self, logical_id: str) -> str:
        if self.stack.resource(logical_id)["Type"] != STATE_MACHINE_TYPE:
            raise TemplateError(f"{logical_id} is not a state machine")
        return self.stack.physical(logical_id)  # a state machine's physical ID is its ARN

    def start(self, logical_id: str, execution_input: Any, *, name: str | None = None) -> str:
        """Start an execution of ``logical_id`` with ``execution_input`` (as JSON); its ARN."""
        started = self._sfn.start_execution(
            stateMachineArn=self.arn(logical_id),
            input=json.dumps(execution_input),
            name=name or str(uuid.uuid4()),  # moto's interpreter names an unnamed execution "None"
        )
        return str(started["executionArn"])

    def describe(self, execution_arn: str) -> Execution:
        described = self._sfn.describe_execution(executionArn=execution_arn)
        map_runs = self._sfn.list_map_runs(executionArn=execution_arn)["mapRuns"]
        output = described.get("output")
        return Execution(
            arn=execution_arn,
            status=described["status"],
            output=json.loads(output) if output is not None else None,
            error=described.get("error"),
            cause=described.get("cause"),
            map_runs=tuple(
                MapRunProgress.of(self._sfn.describe_map_run(mapRunArn=run["mapRunArn"])) for run in map_runs
            ),
        )

    def wait(
        self,
        execution_arn: str,
        *,
        timeout: float,
        on_progress: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Poll ``execution_arn`` until it ends; past ``timeout`` seconds stop it and raise LocalRunError."""
        deadline = self._clock() + timeout
        while True:
            execution = self.describe(execution_arn)
            if on_progress is not None:
                on_progress(execution)
            if not execution.running:
                return execution
            if self._clock() > deadline:
                self._sfn.stop_execution(executionArn=execution_arn, error="Local.Timeout")
                raise LocalRunError(
                    f"execution {execution_arn} still RUNNING after {timeout:.0f} s (stopped); "
                    f"map runs: {list(execution.map_runs)}"
                )
            self._sleep(self.poll_interval)

    def executions(self, logical_id: str) -> list[str]:
        """The ARNs of every execution of ``logical_id`` (any status), newest first."""
        arns: list[str] = []
        request: dict[str, Any] = {"stateMachineArn": self.arn(logical_id)}
        while True:
            page = self._sfn.list_executions(**request)
            arns += [str(execution["executionArn"]) for execution in page["executions"]]
            if not page.get("nextToken"):
                return arns
            request["nextToken"] = page["nextToken"]

    def run(
        self,
        logical_id: str,
        execution_input: Any,
        *,
        timeout: float = 600.0,
        on_progress: Callable[[Execution], None] | None = None,
    ) -> Execution:
        """Start an execution of ``logical_id`` and wait for its end."""
        return self.wait(self.start(logical_id, execution_input), timeout=timeout, on_progress=on_progress)


@dataclass
class FanOutRuns:
    """The executions of the fan-out state machine during a run (the nightly runs' hand-offs start
    them), each waited for to its end: what they did goes into the run's summary."""

    machines: LocalStateMachines
    logical_id: str = FAN_OUT_STATE_MACHINE
    timeout: float = 600.0
    ended: dict[str, Execution] = field(default_factory=dict)

    def wait(self) -> list[Execution]:
        """Wait for every execution not yet seen to end (stopped past ``timeout``: LocalRunError);
        the ones that ended now."""
        listed = self.machines.executions(self.logical_id)  # newest first
        new = [arn for arn in reversed(listed) if arn not in self.ended]
        for arn in new:
            self.ended[arn] = self.machines.wait(arn, timeout=self.timeout)
        return [self.ended[arn] for arn in new]

    def statuses(self) -> dict[str, int]:
        """How many executions ended in each status."""
        return dict(Counter(execution.status for execution in self.ended.values()))

    @property
    def pieces(self) -> int:
        """Pieces the executions built: the succeeded items of their Map Runs."""
        return sum(run.succeeded for execution in self.ended.values() for run in execution.map_runs)

"""Step Functions in the moto child: the template's state machines executed by moto's ASL interpreter.

moto 5.2.5 carries an ASL interpreter (``moto.stepfunctions.parser``, with Distributed Map),
switched on by its ``stepfunctions.execute_state_machine`` setting. ``enable`` turns it on in the
moto server process (``changelake_local.moto_server``) and patches, at run time and in that
process only, the places where moto cannot run our template or departs from AWS:

- **CloudFormation**: moto creates ``AWS::StepFunctions::StateMachine`` in the backend without the
  interpreter and ignores ``DefinitionSubstitutions`` (which the SAM translator emits for every
  ``!GetAtt Function.Arn``) and ``StateMachineType``. Patched: the definition substituted, the
  machine created in the backend the API reads (``substitute_definition``).
- **Lambda tasks**: moto's ``LambdaBackend.invoke`` runs functions in Docker. Patched: the payload
  is forwarded over HTTP to the parent process (``changelake_local.invoke_server``), which runs the
  function in-process and answers in Lambda's shape.
- **Tolerated failures**: moto records a failed Map item as a null result and still reports the
  Map Run SUCCEEDED. On AWS the Map Run fails with ``States.ExceedToleratedFailureThreshold`` once
  the failed items exceed ``ToleratedFailureCount``/``ToleratedFailurePercentage`` (both 0 by
  default: any failed item fails it). Patched (``exceeds_tolerated_failures``).

The interpreter's own boto3 clients call ``http://localhost:$MOTO_PORT``: ``enable`` sets it to
the port this server listens on. docs/local-mode.md lists what the interpreter runs and where it
still departs from AWS.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

#: How long the child waits for the parent's answer to one invocation: Lambda's longest timeout
#: (900 s) and a minute for the invocation to wait for a free execution environment.
INVOKE_TIMEOUT_SECONDS = 960.0
_CAUSE_EXCEEDED = "The specified tolerated failure threshold was exceeded"


def substitute_definition(definition: str, substitutions: Mapping[str, Any] | None) -> str:
    """``definition`` with each ``${key}`` of ``substitutions`` replaced by its value, as Step
    Functions applies ``DefinitionSubstitutions`` (booleans and numbers as their JSON text)."""
    for key, value in (substitutions or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        definition = definition.replace("${" + key + "}", text)
    return definition


def exceeds_tolerated_failures(failed: int, total: int, count: int, percentage: float) -> bool:
    """Whether a Map Run with ``failed`` of ``total`` items failed (or timed out) fails on AWS.

    AWS fails it when the failures exceed either threshold that is set; unset, both are 0, so any
    failure fails it. moto passes 0 for an unset threshold, so a threshold of 0 beside a non-zero
    one is read as unset (an explicit ``ToleratedFailureCount: 0`` beside a percentage is the one
    case that differs: AWS fails at the first failure, this at the percentage).
    """
    if failed == 0:
        return False
    over_count = failed > count
    over_percentage = 100.0 * failed / max(total, 1) > percentage
    if count > 0 and percentage > 0:
        return over_count or over_percentage
    if count > 0:
        return over_count
    return over_percentage


def definition_of(properties: Mapping[str, Any]) -> str:
    """The definition of an ``AWS::StepFunctions::StateMachine``'s (resolved) properties."""
    if "DefinitionS3Location" in properties:
        raise ValueError("DefinitionS3Location is not supported locally: inline the definition")
    if "Definition" in properties:
        definition = json.dumps(properties["Definition"])
    else:
        definition = str(properties.get("DefinitionString", ""))
    return substitute_definition(definition, properties.get("DefinitionSubstitutions"))


def enable(lambda_invoke_url: str, port: int) -> None:
    """Turn the interpreter on in this (the moto server's) process and apply the patches."""
    from moto.core.config import default_user_config

    os.environ["MOTO_PORT"] = str(port)
    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
    _create_state_machines_executable()
    _forward_lambda_invocations(lambda_invoke_url)
    _fail_map_runs_over_tolerance()


def _create_state_machines_executable() -> None:
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def create_from_cloudformation_json(
        cls: type[StateMachine],
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> StateMachine:
        properties = cloudformation_json["Properties"]
        return get_backend(account_id, region_name).create_state_machine(
            properties.get("StateMachineName", resource_name),
            definition_of(properties),
            properties.get("RoleArn", ""),
            tags=[{"key": tag["Key"], "value": tag["Value"]} for tag in properties.get("Tags", [])],
            sm_type=properties.get("StateMachineType"),
        )

    def delete_from_cloudformation_json(
        cls: type[StateMachine],
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    StateMachine.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)  # type: ignore[method-assign,assignment]
    StateMachine.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)  # type: ignore[method-assign,assignment]


def _forward_lambda_invocations(lambda_invoke_url: str) -> None:
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaBackend

    def invoke(  # noqa: PLR0917 - moto's signature
        self: LambdaBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        function = self.get_function(function_name, qualifier)  # moto's 404 for an unknown function
        payload = body.encode() if isinstance(body, str) else (body or b"")
        name = urllib.parse.quote(function.function_name, safe="")
        request = urllib.request.Request(f"{lambda_invoke_url}/functions/{name}", data=payload, method="POST")  # noqa: S310 - http://127.0.0.1 only
        try:
            with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT_SECONDS) as response:  # noqa: S310
                answer = bytes(response.read())
                function_error = response.headers.get("X-Function-Error")
        except urllib.error.HTTPError as refused:  # the parent could not invoke it: a Lambda API error
            error = json.loads(refused.read() or b"{}")
            exc = LambdaClientError(error.get("errorType", "ServiceException"), error.get("errorMessage", ""))
            exc.code = refused.code
            raise exc from None
        except OSError as unreachable:
            exc = LambdaClientError(
                "ServiceException", f"the local runner's invoke server is unreachable: {unreachable}"
            )
            exc.code = 500
            raise exc from None
        if function_error:
            response_headers["x-amz-function-error"] = function_error
        response_headers["Content-Length"] = str(len(answer))
        return answer

    LambdaBackend.invoke = invoke  # type: ignore[method-assign]


def _fail_map_runs_over_tolerance() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    map_run = distributed.DistributedIterationComponent._map_run

    def _map_run(self: distributed.DistributedIterationComponent, env: Any, eval_input: Any) -> None:
        map_run(self, env, eval_input)
        items = eval_input.map_run_record.item_counter
        failed, total = items.failed.get() + items.timed_out.get(), items.total.get()
        count, percentage = eval_input.tolerated_failure_count, eval_input.tolerated_failure_percentage
        if exceeds_tolerated_failures(failed, total, count, percentage):
            name = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            details = MapRunFailedEventDetails(
                error=name.error_name, cause=f"{_CAUSE_EXCEEDED}: {failed} of {total} items failed"
            )
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=name,
                    event_type=HistoryEventType.MapRunFailed,
                    # moto's EventDetails is a total TypedDict that moto itself fills with one key
                    event_details=EventDetails(mapRunFailedEventDetails=details),  # type: ignore[typeddict-item]
                )
            )

    distributed.DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]

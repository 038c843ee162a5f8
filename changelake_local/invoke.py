"""``sam local invoke`` without Docker, a long-running endpoint, and events/env.json.

``invoke_function`` runs one function of template.yaml (by logical ID) in-process with an event
file against the local endpoint: a running one (``--endpoint``, the stack deployed by
``serve`` or ``run``) or a fresh one it starts, deploys and stops.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from changelake_local.aws import client
from changelake_local.deploy import (
    DEFAULT_STACK_NAME,
    DEFAULT_TEMPLATE,
    deploy,
    parameter_values,
    translate,
)
from changelake_local.deployed_stack import REPO_ROOT, DeployedStack
from changelake_local.endpoint import DEFAULT_PORT, MotoEndpoint, aws_environment
from changelake_local.errors import LocalRunError, TemplateError
from changelake_local.functions import LocalFunction, applied_environment
from changelake_local.pipeline import LOCAL_FUNCTION_ENVIRONMENT

ENV_JSON = REPO_ROOT / "events" / "env.json"
DOCKER_HOST = "host.docker.internal"


def attach(
    endpoint: str, *, template: Path = DEFAULT_TEMPLATE, stack_name: str = DEFAULT_STACK_NAME
) -> DeployedStack:
    """The stack already deployed on ``endpoint`` (by ``serve`` or ``run``)."""
    cloudformation = client("cloudformation", endpoint)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    except cloudformation.exceptions.ClientError as exc:
        raise TemplateError(
            f"no stack {stack_name} on {endpoint}: start one with `python -m changelake_local serve`"
        ) from exc
    except Exception as exc:
        raise LocalRunError(f"cannot reach the local endpoint {endpoint}: {exc}") from exc
    given = {item["ParameterKey"]: item["ParameterValue"] for item in stacks[0].get("Parameters", [])}
    # translated as deployed: Fn::ForEach over the stack's own SourceStreamArns
    translated, code = translate(template, {k: v for k, v in given.items() if k == "SourceStreamArns"})
    return DeployedStack(
        name=stack_name,
        endpoint=endpoint,
        template=translated,
        code=code,
        parameters=parameter_values(
            translated, {k: v for k, v in given.items() if k in translated.get("Parameters", {})}
        ),
        physical_ids={
            item["LogicalResourceId"]: item["PhysicalResourceId"]
            for item in resources
            if item.get("LogicalResourceId") and item.get("PhysicalResourceId")
        },
    )


def run_function(stack: DeployedStack, function_id: str, event: Any) -> Any:
    """Run ``function_id`` of the stack once, in this process (a cold start); its exception propagates."""
    function = LocalFunction(stack.function(function_id), extra_environment=LOCAL_FUNCTION_ENVIRONMENT)
    with applied_environment({**aws_environment(stack.endpoint), **LOCAL_FUNCTION_ENVIRONMENT}):
        function.load()
    with applied_environment({**aws_environment(stack.endpoint), **LOCAL_FUNCTION_ENVIRONMENT}):
        return function.invoke(event)


def invoke_function(function_id: str, event_file: Path, *, endpoint: str | None = None) -> dict[str, Any]:
    """Invoke ``function_id`` with the JSON in ``event_file``: its result (or error) and the bucket's keys."""
    try:
        event = json.loads(event_file.read_text())
    except (OSError, ValueError) as exc:
        raise LocalRunError(f"cannot read the event file {event_file}: {exc}") from exc
    if endpoint is not None:
        stack = attach(endpoint)
        return _outcome(stack, function_id, event)
    with MotoEndpoint(port=0) as local:
        stack = deploy(local.url)
        return _outcome(stack, function_id, event)


def _outcome(stack: DeployedStack, function_id: str, event: Any) -> dict[str, Any]:
    if function_id not in stack.functions():
        raise TemplateError(
            f"{function_id} is not a function of the template (functions: {', '.join(stack.functions())})"
        )
    try:
        result: dict[str, Any] = {"result": run_function(stack, function_id, event)}
    except LocalRunError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported as Lambda reports a function error
        result = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
    s3 = client("s3", stack.endpoint)
    listed = s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])
    result["bucket"] = stack.bucket
    result["objects"] = [item["Key"] for item in listed]
    return result


def docker_environment(stack: DeployedStack, port: int = DEFAULT_PORT) -> dict[str, dict[str, str]]:
    """events/env.json: the variables of every function, pointing containers at the host's endpoint."""
    host_endpoint = f"http://{DOCKER_HOST}:{port}"
    parameters: dict[str, str] = {
        "AWS_ENDPOINT_URL": host_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for logical_id in stack.functions():
        parameters.update(stack.function(logical_id).environment)
    result: dict[str, dict[str, str]] = {"Parameters": dict(sorted(parameters.items()))}
    for logical_id in stack.functions():
        result[logical_id] = {**stack.function(logical_id).environment, "AWS_ENDPOINT_URL": host_endpoint}
    return result


def write_env_json(path: Path = ENV_JSON) -> Path:
    with MotoEndpoint(port=0) as local:
        stack = deploy(local.url)
        path.write_text(json.dumps(docker_environment(stack), indent=2) + "\n")
    return path


def changelake_command(endpoint: str, stack_name: str = DEFAULT_STACK_NAME) -> str:
    """The ``changelake`` line that operates the local stack at ``endpoint``."""
    stack = "" if stack_name == DEFAULT_STACK_NAME else f" --stack {stack_name}"
    return f".venv/bin/changelake --endpoint {endpoint}{stack} status"


def serve(port: int | None = None) -> int:
    """Start the endpoint on ``port`` (default 4566), deploy, print the names, wait for Ctrl-C."""
    with MotoEndpoint(port=DEFAULT_PORT if port is None else port) as local:
        stack = deploy(local.url)
        print(f"local endpoint {local.url} with stack {stack.name}:")
        for logical_id in ("ChangeTable", "ChangeQueue", "ChangeDLQ", "StreamFailureQueue", "DataBucket"):
            print(f"  {logical_id:20} {stack.physical(logical_id)}")
        print(f"operate it with:\n  {changelake_command(local.url, stack.name)}")
        print("Ctrl-C stops it.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")
    return 0

"""Deploying template.yaml to the local endpoint, the way ``sam deploy`` would.

The SAM transform is applied first (moto's CloudFormation silently drops ``AWS::Serverless::*``),
by the SAM translator in the SAM CLI's venv; the function folders are zipped to an artifacts
bucket (``sam package``); the result goes to CloudFormation ``create_stack`` on moto.
``AWS::Lambda::EventSourceMapping`` resources are kept out of what moto deploys (moto would run
them in Docker, which fails and still consumes SQS receives); the local runner
(changelake_local.esm) runs them instead, from the same translated template. What was deployed is
read back as a ``DeployedStack`` (changelake_local.deployed_stack).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from changelake_local.aws import client
from changelake_local.deployed_stack import MAPPING_TYPE, REPO_ROOT, DeployedStack
from changelake_local.endpoint import REGION, moto_api
from changelake_local.errors import TemplateError

DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_STACK_NAME = "changelake"
ARTIFACTS_BUCKET = "changelake-local-artifacts"
#: moto's generated names (queue and bucket suffixes) follow this seed, so events/env.json holds.
NAME_SEED = 20261122
_MAX_TEMPLATE_BODY = 51_200
#: What the local pipeline needs from the template; ``deploy`` checks they were created (and
#: ChangeTable, when the stack makes its own: SourceStreamArns empty).
PIPELINE_RESOURCES = ("ChangeQueue", "ChangeDLQ", "DataBucket")


def sam_python() -> Path:
    """The SAM CLI venv's interpreter, which has aws-sam-translator."""
    configured = os.environ.get("CHANGELAKE_SAM_PYTHON")
    path = Path(configured) if configured else REPO_ROOT / ".venv-sam" / "bin" / "python"
    if not path.exists():
        raise TemplateError(
            f"the SAM translator's Python ({path}) is missing: run `make setup` "
            "(or set CHANGELAKE_SAM_PYTHON to a Python with aws-sam-translator)"
        )
    return path


def translate(
    template: Path, parameters: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """``template`` with the language extensions (``Fn::ForEach`` over these parameter values) and
    the SAM transform applied, and each function's local code folder."""
    if not template.is_file():
        raise TemplateError(f"no template at {template}")
    script = Path(__file__).with_name("sam_translate.py")
    overrides = json.dumps(parameters or {})
    completed = subprocess.run(  # noqa: S603 - our own script, our own interpreter
        [str(sam_python()), str(script), str(template), ARTIFACTS_BUCKET, overrides],
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        detail = completed.stderr.strip() or f"status {completed.returncode}"
        raise TemplateError(f"{template.name} could not be translated:\n{detail}")
    result = json.loads(completed.stdout)
    return result["template"], result["code"]


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def parameter_values(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    declared = template.get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
    values = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    values.update(overrides)
    missing = sorted(set(declared) - set(values))
    if missing:
        raise TemplateError(f"template parameter(s) without a value: {', '.join(missing)}")
    return values


def deploy(
    endpoint: str,
    *,
    template: Path = DEFAULT_TEMPLATE,
    stack_name: str = DEFAULT_STACK_NAME,
    parameters: dict[str, str] | None = None,
    seed: int | None = NAME_SEED,
    timeout: float = 120.0,
    update: bool = False,
    required: tuple[str, ...] = PIPELINE_RESOURCES,
) -> DeployedStack:
    """Translate, package and create the stack on ``endpoint`` (``update``: update the one there,
    as a second ``sam deploy`` does); raise TemplateError on failure."""
    translated, code = translate(template, parameters)
    values = parameter_values(translated, parameters or {})
    s3 = client("s3", endpoint)
    if seed is not None:
        moto_api(endpoint, f"seed?a={seed}", method="POST")
    s3.create_bucket(Bucket=ARTIFACTS_BUCKET)
    for logical_id, folder in code.items():
        path = REPO_ROOT / folder
        if not path.is_dir():
            raise TemplateError(f"{logical_id}: CodeUri {folder} is not a folder")
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=f"{logical_id}.zip", Body=_zip_folder(path))
    deployable = json.loads(json.dumps(translated))
    deployable["Resources"] = {
        key: value for key, value in deployable["Resources"].items() if value["Type"] != MAPPING_TYPE
    }
    body = json.dumps(deployable)
    cloudformation = client("cloudformation", endpoint)
    create: dict[str, Any] = {
        "StackName": stack_name,
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
    }
    if len(body) > _MAX_TEMPLATE_BODY:
        s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=f"{stack_name}.json", Body=body.encode())
        # moto recognises template URLs only path-style with the host localhost
        port = endpoint.rsplit(":", 1)[-1]
        create["TemplateURL"] = f"http://localhost:{port}/{ARTIFACTS_BUCKET}/{stack_name}.json"
    else:
        create["TemplateBody"] = body
    try:
        if update:
            cloudformation.update_stack(**create)
        else:
            cloudformation.create_stack(**create)
    except cloudformation.exceptions.ClientError as exc:
        raise TemplateError(f"CloudFormation refused the template: {exc}") from exc
    stack = _settled(cloudformation, stack_name, "UPDATE_COMPLETE" if update else "CREATE_COMPLETE", timeout)
    resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    physical = {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for item in resources
        if item.get("LogicalResourceId") and item.get("PhysicalResourceId")
    }
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    deployed = DeployedStack(
        name=stack_name,
        endpoint=endpoint,
        template=translated,
        code=code,
        parameters=values,
        physical_ids=physical,
        outputs=outputs,
    )
    for logical_id in required:
        deployed.physical(logical_id)
    if deployed.creates_change_table:
        deployed.physical("ChangeTable")
    register_alarms(deployed)
    return deployed


def _settled(cloudformation: Any, stack_name: str, expected: str, timeout: float) -> dict[str, Any]:
    """The stack once it is no longer in progress; TemplateError unless it ended ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise TemplateError(f"stack {stack_name} still {stack['StackStatus']} after {timeout:.0f} s")
        time.sleep(0.2)
    if stack["StackStatus"] != expected:
        raise TemplateError(
            f"stack {stack_name} ended {stack['StackStatus']}: "
            f"{stack.get('StackStatusReason', 'no reason given')}"
        )
    return stack


def alarm_name(stack_name: str, logical_id: str) -> str:
    """The name a local alarm gets (CloudFormation names them ``<stack>-<logical ID>-<suffix>``)."""
    return f"{stack_name}-{logical_id}"


def register_alarms(stack: DeployedStack) -> list[str]:
    """Create the template's alarms in moto's CloudWatch, which moto's CloudFormation skips, so
    ``changelake status`` reads the same alarms locally as in AWS (names: ``alarm_name``)."""
    cloudwatch = client("cloudwatch", stack.endpoint)
    names = []
    for logical_id, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        if "Condition" in resource and not stack.resolver.condition(resource["Condition"]):
            continue
        properties = stack.resolver.resolve(resource["Properties"])
        properties.pop("AlarmName", None)
        for name in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):  # parameters resolve to text
            if name in properties:
                properties[name] = int(properties[name])
        if "Threshold" in properties:
            properties["Threshold"] = float(properties["Threshold"])
        names.append(alarm_name(stack.name, logical_id))
        cloudwatch.put_metric_alarm(AlarmName=names[-1], **properties)
    return names

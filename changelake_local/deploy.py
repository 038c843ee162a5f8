"""Deploying template.yaml to the local endpoint, the way ``sam deploy`` would.

The SAM transform is applied first (moto's CloudFormation silently drops ``AWS::Serverless::*``),
by the SAM translator in the SAM CLI's venv; the function folders are zipped to an artifacts
bucket (``sam package``); the result goes to CloudFormation ``create_stack`` on moto.
``AWS::Lambda::EventSourceMapping`` resources are kept out of what moto deploys (moto would run
them in Docker, which fails and still consumes SQS receives); the local runner
(changelake_local.esm) runs them instead, from the same translated template.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changelake_local.aws import client
from changelake_local.endpoint import ACCOUNT, REGION, moto_api
from changelake_local.errors import TemplateError
from changelake_local.intrinsics import Resolver

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_STACK_NAME = "changelake"
ARTIFACTS_BUCKET = "changelake-local-artifacts"
#: moto's generated names (queue and bucket suffixes) follow this seed, so events/env.json holds.
NAME_SEED = 20261122
_MAX_TEMPLATE_BODY = 51_200
_MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"


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


def translate(template: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """``template`` with the SAM transform applied, and each function's local code folder."""
    if not template.is_file():
        raise TemplateError(f"no template at {template}")
    script = Path(__file__).with_name("sam_translate.py")
    completed = subprocess.run(  # noqa: S603 - our own script, our own interpreter
        [str(sam_python()), str(script), str(template), ARTIFACTS_BUCKET],
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


@dataclass(frozen=True)
class FunctionSpec:
    """A function as the template defines it, resolved against the deployed stack."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory_mb: int


@dataclass(frozen=True)
class MappingSpec:
    """An event source mapping's settings, resolved (Lambda's defaults where the template is silent)."""

    logical_id: str
    function: str
    source_arn: str
    batch_size: int
    batching_window: float
    starting_position: str | None
    report_batch_item_failures: bool
    bisect_on_error: bool
    maximum_retry_attempts: int  # -1: until the record expires
    maximum_record_age: int  # -1: the stream's retention
    on_failure_arn: str | None

    @property
    def is_stream(self) -> bool:
        return ":dynamodb:" in self.source_arn


@dataclass(frozen=True)
class ScheduleSpec:
    logical_id: str
    function: str
    expression: str
    enabled: bool
    input: str | None


@dataclass
class DeployedStack:
    """The stack on the local endpoint: translated template, parameters, physical IDs."""

    name: str
    endpoint: str
    template: dict[str, Any]
    code: dict[str, str]
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    _attributes: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _resolver: Resolver | None = field(default=None, repr=False)

    @property
    def resolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(
                parameters=self.parameters,
                physical_ids=self.physical_ids,
                conditions=self.template.get("Conditions", {}),
                attribute=self.attribute,
                pseudo={
                    "AWS::StackName": self.name,
                    "AWS::Region": REGION,
                    "AWS::AccountId": ACCOUNT,
                    "AWS::Partition": "aws",
                    "AWS::URLSuffix": "amazonaws.com",
                    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{self.name}/local",
                },
            )
        return self._resolver

    def resource(self, logical_id: str) -> dict[str, Any]:
        try:
            resource: dict[str, Any] = self.template["Resources"][logical_id]
        except KeyError:
            raise TemplateError(f"the template has no resource {logical_id!r}") from None
        return resource

    def physical(self, logical_id: str) -> str:
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise TemplateError(f"{logical_id} was not deployed to the local endpoint") from None

    def attribute(self, logical_id: str, attribute: str) -> str:
        """Fn::GetAtt, read from the live resources (moto's Outputs are not relied upon)."""
        cached = self._attributes.get((logical_id, attribute))
        if cached is not None:
            return cached
        kind = self.resource(logical_id)["Type"]
        physical = self.physical(logical_id)
        value: str
        if kind == "AWS::DynamoDB::Table" and attribute in ("StreamArn", "Arn"):
            table = client("dynamodb", self.endpoint).describe_table(TableName=physical)
            value = table["Table"]["LatestStreamArn" if attribute == "StreamArn" else "TableArn"]
        elif kind == "AWS::SQS::Queue" and attribute == "Arn":
            value = client("sqs", self.endpoint).get_queue_attributes(
                QueueUrl=physical, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        elif kind == "AWS::SQS::Queue" and attribute == "QueueName":
            value = physical.rsplit("/", 1)[-1]
        elif kind == "AWS::S3::Bucket" and attribute == "Arn":
            value = f"arn:aws:s3:::{physical}"
        elif kind == "AWS::Lambda::Function" and attribute == "Arn":
            value = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        elif kind == "AWS::IAM::Role" and attribute == "Arn":
            value = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        else:
            raise TemplateError(f"the local runner cannot read {logical_id}.{attribute} ({kind})")
        self._attributes[(logical_id, attribute)] = value
        return value

    def logical_id_of_arn(self, arn: str) -> str:
        for logical_id, resource in self.template["Resources"].items():
            if (
                resource["Type"] in ("AWS::SQS::Queue", "AWS::DynamoDB::Table")
                and logical_id in self.physical_ids
            ):
                attribute = "StreamArn" if resource["Type"] == "AWS::DynamoDB::Table" else "Arn"
                if self.attribute(logical_id, attribute) == arn:
                    return logical_id
        raise TemplateError(f"no deployed queue or stream has the ARN {arn}")

    def queue_url(self, logical_id: str) -> str:
        return self.physical(logical_id)

    def queue_url_of_arn(self, arn: str) -> str:
        return self.physical(self.logical_id_of_arn(arn))

    @property
    def bucket(self) -> str:
        return self.physical("DataBucket")

    @property
    def table(self) -> str:
        return self.physical("ChangeTable")

    def functions(self) -> list[str]:
        return [
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function"
        ]

    def function(self, logical_id: str) -> FunctionSpec:
        resource = self.resource(logical_id)
        if resource["Type"] != "AWS::Lambda::Function":
            raise TemplateError(f"{logical_id} is a {resource['Type']}, not a function")
        wanted = ("Handler", "Environment", "Timeout", "MemorySize")  # not Layers: moto keeps no layer IDs
        properties = self.resolver.resolve(
            {key: resource["Properties"][key] for key in wanted if key in resource["Properties"]}
        )
        variables = properties.get("Environment", {}).get("Variables", {})
        if logical_id not in self.code:
            raise TemplateError(f"{logical_id} has no local CodeUri folder")
        name = self.physical(logical_id)
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=self.attribute(logical_id, "Arn"),
            code_dir=(REPO_ROOT / self.code[logical_id]).resolve(),
            handler=str(properties.get("Handler", "app.lambda_handler")),
            environment={key: str(value) for key, value in variables.items()},
            timeout=int(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
        )

    def function_of(self, reference: str) -> str:
        """The logical ID of the function a mapping or schedule names (name or ARN)."""
        for logical_id in self.functions():
            if reference in (self.physical(logical_id), self.attribute(logical_id, "Arn")):
                return logical_id
        raise TemplateError(f"no deployed function is named {reference}")

    def mappings(self) -> list[MappingSpec]:
        specs = []
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] != _MAPPING_TYPE:
                continue
            props = self.resolver.resolve(resource["Properties"])
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            is_stream = ":dynamodb:" in str(props["EventSourceArn"])
            response_types = props.get("FunctionResponseTypes", [])
            specs.append(
                MappingSpec(
                    logical_id=logical_id,
                    function=self.function_of(str(props["FunctionName"])),
                    source_arn=str(props["EventSourceArn"]),
                    batch_size=int(props.get("BatchSize", 100 if is_stream else 10)),
                    batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    starting_position=props.get("StartingPosition"),
                    report_batch_item_failures="ReportBatchItemFailures" in response_types,
                    bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
                    maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                    maximum_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
                    on_failure_arn=str(on_failure) if on_failure else None,
                )
            )
        return specs

    def schedules(self) -> list[ScheduleSpec]:
        specs = []
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::Scheduler::Schedule":
                continue
            props = self.resolver.resolve(resource["Properties"])
            target = props["Target"]
            specs.append(
                ScheduleSpec(
                    logical_id=logical_id,
                    function=self.function_of(str(target["Arn"])),
                    expression=str(props["ScheduleExpression"]),
                    enabled=props.get("State", "ENABLED") == "ENABLED",
                    input=target.get("Input"),
                )
            )
        return specs


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
) -> DeployedStack:
    """Translate, package and create the stack on ``endpoint``; raise TemplateError on failure."""
    translated, code = translate(template)
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
        key: value for key, value in deployable["Resources"].items() if value["Type"] != _MAPPING_TYPE
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
        cloudformation.create_stack(**create)
    except cloudformation.exceptions.ClientError as exc:
        raise TemplateError(f"CloudFormation refused the template: {exc}") from exc
    deadline = time.monotonic() + timeout
    while True:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise TemplateError(f"stack {stack_name} still {stack['StackStatus']} after {timeout:.0f} s")
        time.sleep(0.2)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise TemplateError(
            f"stack {stack_name} ended {stack['StackStatus']}: "
            f"{stack.get('StackStatusReason', 'no reason given')}"
        )
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
    for logical_id in ("ChangeTable", "ChangeQueue", "ChangeDLQ", "DataBucket"):
        deployed.physical(logical_id)
    register_alarms(deployed)
    return deployed


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

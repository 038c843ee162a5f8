"""The stack deployed on the local endpoint, as the local runner reads it: the translated template
resolved against the live resources (physical IDs, attributes), and the functions, event source
mappings and schedules it defines, each as a typed spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changelake_local.aws import client
from changelake_local.endpoint import ACCOUNT, REGION
from changelake_local.errors import TemplateError
from changelake_local.intrinsics import Resolver

#: The repository: the functions' CodeUri folders are relative to it.
REPO_ROOT = Path(__file__).resolve().parent.parent
MAPPING_TYPE = "AWS::Lambda::EventSourceMapping"


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
                list_parameters=frozenset(
                    name
                    for name, spec in self.template.get("Parameters", {}).items()
                    if spec.get("Type") == "CommaDelimitedList"
                ),
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

    @property
    def creates_change_table(self) -> bool:
        """Whether the stack made its own ChangeTable (SourceStreamArns empty), not attached tables."""
        return "ChangeTable" in self.template["Resources"] and self.resolver.condition("CreatesChangeTable")

    @property
    def source_streams(self) -> list[str]:
        """The streams the stack follows: ChangeTable's, or those SourceStreamArns names."""
        return [spec.source_arn for spec in self.mappings() if spec.is_stream]

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
            if resource["Type"] != MAPPING_TYPE:
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

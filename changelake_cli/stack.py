"""Which stack, reached how: the target from the command line and samconfig.toml, AWS clients for
it, and the stack's resources as CloudFormation describes them (never typed in by hand)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from changelake.exceptions import DeliveryError
from changelake.integrations.base import AwsAdapter
from changelake_cli.errors import UnreachableError, UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMCONFIG = "samconfig.toml"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: What a local endpoint (moto) accepts; used only there, and only when nothing else is configured.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: Fail fast when a stack cannot be reached (an operator waits on every call).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=60)
#: A synchronous invocation waits up to Lambda's 15-minute limit, and is never retried by botocore:
#: a read timeout would otherwise run a compaction or a redrive a second time.
INVOKE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=910
)
#: Logical IDs of docs/contracts.md ("Names") the command relies on.
BUCKET_ID, TABLE_ID = "DataBucket", "ChangeTable"
QUEUE_IDS = ("ChangeQueue", "ChangeDLQ", "StreamFailureQueue", "AsyncFailureQueue")


@dataclass(frozen=True)
class SamDefaults:
    stack: str | None
    region: str | None


def sam_defaults(
    config_env: str = "default", search: tuple[Path, ...] = (Path.cwd(), REPO_ROOT)
) -> SamDefaults:
    """The stack name and Region of ``config_env`` in the first samconfig.toml found."""
    for folder in search:
        path = folder / SAMCONFIG
        if path.is_file():
            config = tomllib.loads(path.read_text(encoding="utf-8")).get(config_env, {})
            stack = config.get("global", {}).get("parameters", {}).get("stack_name")
            region = config.get("deploy", {}).get("parameters", {}).get("region")
            return SamDefaults(stack, region)
    return SamDefaults(None, None)


@dataclass(frozen=True)
class Target:
    """The command line's --stack, --region, --profile and --endpoint, defaults applied."""

    stack: str
    region: str | None = None
    profile: str | None = None
    endpoint: str | None = None

    @property
    def is_local(self) -> bool:
        """An endpoint on this machine: the local stack of ``make run`` or ``changelake_local serve``."""
        return self.endpoint is not None and urlparse(self.endpoint).hostname in LOCAL_HOSTS

    def where(self) -> str:
        return self.endpoint or f"Region {self.region or '(default)'}"


SessionFactory = Callable[..., Any]


class Aws:
    """boto3 clients for one target. On a local endpoint, dummy credentials when none are configured."""

    def __init__(self, target: Target, *, session_factory: SessionFactory = boto3.Session) -> None:
        self.target = target
        try:
            self.session = session_factory(profile_name=target.profile, region_name=target.region)
        except ProfileNotFound as exc:
            raise UnreachableError(f"no AWS profile {target.profile!r} in your AWS configuration") from exc
        self._credentials: dict[str, str] = {}
        if self.session.get_credentials() is None:
            if not target.is_local:
                raise UnreachableError(
                    "no AWS credentials: configure them (aws configure, AWS_PROFILE, --profile) "
                    "or pass --endpoint for the local stack"
                )
            self._credentials = LOCAL_CREDENTIALS
        if self.session.region_name is None:
            raise UsageError("no AWS Region: pass --region or set AWS_DEFAULT_REGION")
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str, *, invoke: bool = False) -> Any:
        """A client of ``service``; ``invoke``: for synchronous Lambda invocations (``INVOKE_CONFIG``)."""
        key = f"{service}/{invoke}"
        if key not in self._clients:
            config = INVOKE_CONFIG if invoke else CLIENT_CONFIG
            self._clients[key] = self.session.client(
                service, endpoint_url=self.target.endpoint, config=config, **self._credentials
            )
        return self._clients[key]


class CloudFormation(AwsAdapter):
    service = "cloudformation"

    def describe(self, stack: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        stacks = self._request("describe_stacks", f"stack {stack}", StackName=stack)["Stacks"]
        resources = self._request("describe_stack_resources", f"stack {stack}", StackName=stack)
        return stacks[0], resources["StackResources"]


@dataclass(frozen=True)
class StackInfo:
    """The deployed stack: parameters, outputs and every resource's physical ID by logical ID."""

    name: str
    region: str
    status: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    physical: dict[str, str]
    types: dict[str, str] = field(default_factory=dict)

    def resource(self, logical_id: str) -> str:
        try:
            return self.physical[logical_id]
        except KeyError:
            raise UsageError(
                f"stack {self.name} has no {logical_id} (deployed from an older template?)"
            ) from None

    @property
    def bucket(self) -> str:
        return self.resource(BUCKET_ID)

    @property
    def table(self) -> str:
        return self.resource(TABLE_ID)

    def of_type(self, kind: str) -> dict[str, str]:
        return {logical: self.physical[logical] for logical, t in sorted(self.types.items()) if t == kind}

    @property
    def functions(self) -> dict[str, str]:
        return self.of_type("AWS::Lambda::Function")

    @property
    def queues(self) -> dict[str, str]:
        return {
            logical: url for logical, url in self.of_type("AWS::SQS::Queue").items() if logical in QUEUE_IDS
        }

    @property
    def alarms(self) -> dict[str, str]:
        return self.of_type("AWS::CloudWatch::Alarm")

    @property
    def schedules(self) -> dict[str, str]:
        return self.of_type("AWS::Scheduler::Schedule")

    def function(self, logical_id: str) -> str:
        if logical_id not in self.functions:
            raise UsageError(f"stack {self.name} has no {logical_id} (deployed from an older template?)")
        return self.functions[logical_id]

    def parameter_int(self, name: str, default: int) -> int:
        value = self.parameters.get(name)
        return int(value) if value not in (None, "") else default


def describe_stack(aws: Aws) -> StackInfo:
    """The target's stack; ``UnreachableError`` when it does not exist or cannot be reached."""
    name = aws.target.stack
    try:
        stack, resources = CloudFormation(client=aws.client("cloudformation")).describe(name)
    except DeliveryError as exc:
        if exc.code == "ValidationError":  # CloudFormation's code for a stack that does not exist
            raise UnreachableError(
                f"no stack {name!r} at {aws.target.where()}: deploy it (sam deploy) or pass --stack"
            ) from exc
        raise UnreachableError(f"cannot reach stack {name!r} at {aws.target.where()}: {exc}") from exc
    return StackInfo(
        name=name,
        region=aws.region,
        status=str(stack["StackStatus"]),
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        physical={
            r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r.get("PhysicalResourceId")
        },
        types={r["LogicalResourceId"]: r["ResourceType"] for r in resources if r.get("PhysicalResourceId")},
    )

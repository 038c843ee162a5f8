"""IAM, read from the translated template: no wildcard the AWS APIs do not force on us, and no
permission a function's code never uses (compared with a recorded run of every function on moto).

The recorded run intercepts every botocore request the handlers make (service, operation and the
bucket prefix, queue, stream or function it targets) while each function goes through all of its
paths: success, quarantine, claim checks, hand-off, aborts, deletes, loss reports, redrives.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from changelake.compaction.compactor import Compactor
from changelake.compaction.service import CompactionService
from changelake.exceptions import DeliveryError
from changelake.fan_out import FanOut
from changelake.integrations.s3 import S3Store
from changelake.integrations.step_functions import StateMachine
from changelake.integrations.streams import StreamReader
from changelake.late import LateMarkers
from changelake.recovery.dlq import REDRIVE_COUNT_ATTRIBUTE
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.columns import ColumnLayout
from changelake.snapshot.parquet import ParquetSnapshots
from changelake.snapshot.service import SnapshotService
from changelake_testing.stream_records import change_batch, realistic_item, stream_record
from tests.conftest import REGION, FakeLambdaContext, HandlerLoader, Stack
from tests.functional.fakes import FailingPutS3, WrappingClient, client_error
from tests.functional.helpers import create_stream_table, sqs_event
from tests.functional.recovery.test_async_failures import COMPACTION_ARN, destination_record
from tests.functional.recovery.test_stream_failures import failure_record, shard_records
from tests.functional.snapshot.support import clock
from tests.functional.snapshot.test_bootstrap import EXPORT_ID
from tests.template.conftest import ATTACHED_STREAMS
from tests.template.test_template_contract import FUNCTIONS, as_list, in_mode, render, role_of, walk

pytestmark = pytest.mark.template

EXPORT = Path(__file__).resolve().parents[1] / "fixtures" / "snapshot" / "export"
#: A JSON Schema for "orders", so the snapshot function also writes (and replaces) Parquet days.
SCHEMAS = EXPORT.parent / "schemas"

Grant = tuple[str, str]  # (IAM action, what it is scoped to: a bucket prefix or a resource's logical ID)

# Allow statements whose "*" AWS requires, by Sid: a key policy's Resource is always "*" (it means
# "this key"), and its account statement is AWS's default key policy (kms:* for the account root,
# so the key stays manageable and IAM policies can grant its use).
REQUIRED_WILDCARDS = {
    "AccountAdministersAndDelegatesToIam": "AWS's default key statement: kms:* for the account, Resource *",
    "CloudWatchAlarmsPublishToTheTopic": "key policy: Resource * is the key itself",
    "LogsEncryptTheStackLogGroups": "key policy: Resource * is the key itself",
    "LambdaListsStreams": "dynamodb:ListStreams has no resource-level permissions (Lambda's stream poller)",
    "DistributedMapWatchesItsChildExecutions": "a Distributed Map's child executions are named at run time",
}
# AWS managed policies SAM attaches to every execution role it builds: logs, X-Ray, and the
# pollers of the event source mappings (which Lambda runs with the function's role). Replacing
# them means hand-written roles; X-Ray's PutTraceSegments has no resource-level permissions.
SAM_MANAGED_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess",
    "service-role/AWSLambdaDynamoDBExecutionRole",
    "service-role/AWSLambdaSQSQueueExecutionRole",
}
# Used by the Lambda service with the role, never by our code: the on-failure destinations.
SERVICE_GRANTS: dict[str, set[Grant]] = {
    "StreamConsumerFunction": {
        ("sqs:SendMessage", "StreamFailureQueue"),
        # Lambda's stream poller reads the followed stream with the function's role
        ("dynamodb:DescribeStream", "ChangeTable"),
        ("dynamodb:GetRecords", "ChangeTable"),
        ("dynamodb:GetShardIterator", "ChangeTable"),
        ("dynamodb:ListStreams", "*"),
    },
    "CompactionFunction": {("sqs:SendMessage", "AsyncFailureQueue")},
    "SnapshotFunction": {("sqs:SendMessage", "AsyncFailureQueue")},
    "DlqRedriveFunction": {("sqs:SendMessage", "AsyncFailureQueue")},
}

_S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}
_SQS_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


# ---------------------------------------------------------------- what the template grants


def scope_of(resource: str) -> str:
    """``${DataBucket.Arn}/raw/*`` -> ``raw/``; ``ChangeQueue.Arn`` -> ``ChangeQueue``; ..."""
    if resource.startswith("${DataBucket.Arn}/"):
        return resource.removeprefix("${DataBucket.Arn}/").removesuffix("*")
    if resource.endswith("${AWS::StackName}-compaction"):
        return "CompactionFunction"
    if resource.endswith("${AWS::StackName}-snapshot"):
        return "SnapshotFunction"
    if resource.endswith(":stateMachine:${AWS::StackName}-fan-out"):
        return "FanOutStateMachine"
    return resource.split(".", maxsplit=1)[0]


def granted(role: dict[str, Any]) -> set[Grant]:
    """Every (action, scope) of the role's inline policies; ListBucket by its prefix condition."""
    found: set[Grant] = set()
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    if prefixes is not None:
                        found.update((action, f"{p.removesuffix('/*')}/") for p in prefixes if "*" in p)
                    else:
                        found.add((action, scope_of(render(resource))))
    return found


# ---------------------------------------------------------------- what the code calls


def call_grant(service: str, operation: str, params: dict[str, Any]) -> Grant:
    """The permission one botocore request needs: the action and its object key (S3) or resource."""
    if service == "s3":
        return _S3_ACTIONS[operation], str(params.get("Key", params.get("Prefix", "")))
    if service == "sqs":
        queue = str(params["QueueUrl"]).rsplit("/", 1)[1].removeprefix("changelake-")
        return _SQS_ACTIONS.get(operation, f"sqs:{operation}"), queue
    if service in ("dynamodbstreams", "dynamodb"):
        return f"dynamodb:{operation}", "ChangeTable"
    if service == "stepfunctions":
        assert operation == "StartExecution"
        assert str(params["stateMachineArn"]).endswith(":stateMachine:changelake-fan-out")
        return "states:StartExecution", "FanOutStateMachine"
    if service == "lambda":
        assert operation == "Invoke"
        function = next(name for name in ("compaction", "snapshot") if name in str(params["FunctionName"]))
        return "lambda:InvokeFunction", f"{function.title()}Function"
    raise AssertionError(f"unexpected AWS call {service}.{operation}")


def covers(grant: Grant, call: Grant) -> bool:
    """Whether ``grant`` allows ``call``: the same action, on the key's prefix or the same resource."""
    (action, scope), (called, target) = grant, call
    if action != called:
        return False
    return target.startswith(scope) if action.startswith("s3:") else target == scope


class Recorder:
    """Records every botocore request made while ``recording`` is on."""

    def __init__(self) -> None:
        self.calls: list[Grant] = []
        self.on = False

    @contextmanager
    def recording(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorded = Recorder()
    real = BaseClient._make_api_call

    def make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if recorded.on:
            recorded.calls.append(call_grant(client.meta.service_model.service_name, operation, params))
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", make_api_call)
    return recorded


# ---------------------------------------------------------------- every path of every function

HOUR_START = 1_795_780_800.0  # 2026-11-27T12:00:00Z
MANUAL_EVENT = {"table": "orders", "dt": "2026-11-27", "hour": "12"}


def keyed_record(sequence: int, image: dict[str, Any]) -> dict[str, Any]:
    keys = {"pk": {"S": f"customer#{sequence}"}, "sk": {"S": "order#1"}}
    return stream_record(
        table="orders",
        event_name="INSERT",
        sequence_number=sequence,
        created=HOUR_START + 5,
        keys=keys,
        new_image={**image, **keys},
    )


def store_changes(stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, seed: int) -> None:
    """Five changes of hour 12 through consumer and aggregator (not recorded)."""
    records = change_batch(random.Random(seed), 5, start=HOUR_START, first_sequence=10**20 * seed)
    load_handler("stream_consumer", stack.environment).lambda_handler({"Records": records}, context)
    load_handler("aggregator", stack.environment).lambda_handler(sqs_event(stack.drain()), context)


def run_consumer_and_aggregator(
    stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, recorder: Recorder
) -> dict[str, list[Grant]]:
    """Good, poison and oversized records through the consumer; their messages and a foreign body
    through the aggregator."""
    consumer = load_handler("stream_consumer", stack.environment, MAX_MESSAGE_BYTES="2048")
    big = {"blob": {"B": base64.b64encode(random.Random(7).randbytes(3000)).decode()}}  # incompressible
    records = [
        *change_batch(random.Random(1), 5, start=HOUR_START),
        keyed_record(10**22, {"bad": {"XX": "1"}}),
        keyed_record(10**22 + 1, big),
    ]
    with recorder.recording():
        consumer.lambda_handler({"Records": records}, context)
    consumer_calls, recorder.calls = recorder.calls, []
    aggregator = load_handler("aggregator", stack.environment)
    messages = [*stack.drain(), {"MessageId": "m-foreign", "ReceiptHandle": "r", "Body": "not ours"}]
    with recorder.recording():
        aggregator.lambda_handler(sqs_event(messages), context)
    aggregator_calls, recorder.calls = recorder.calls, []
    return {"StreamConsumerFunction": consumer_calls, "AggregatorFunction": aggregator_calls}


def run_compaction(
    stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, recorder: Recorder
) -> list[Grant]:
    """Compact the hour; again after a late file (old parts deleted); a refused commit (uploads
    aborted); and a hand-off when time runs short."""
    compaction = load_handler("compaction", stack.environment)
    store_changes(stack, load_handler, context, 1)
    with recorder.recording():
        compaction.lambda_handler(MANUAL_EVENT, context)
    store_changes(stack, load_handler, context, 2)
    with recorder.recording():
        compaction.lambda_handler(MANUAL_EVENT, context)
    store_changes(stack, load_handler, context, 3)
    for key in stack.keys("late/compaction/"):  # a failed hour without a late marker gets a retry marker
        stack.s3.delete_object(Bucket=stack.bucket, Key=key)
    refusing = FailingPutS3(boto3.client("s3", region_name=REGION), "compacted/")
    with recorder.recording():
        refused = S3Store(stack.bucket, client=refusing)
        summary = CompactionService(Compactor(refused), markers=LateMarkers(refused)).handle(
            MANUAL_EVENT, context
        )
        short = FakeLambdaContext(function_name="changelake-compaction", remaining_ms=1000)
        with pytest.raises(DeliveryError):
            compaction.lambda_handler(MANUAL_EVENT, short)  # the hand-off's function is not on moto
    assert len(summary.failed) == 1
    # the nightly run hands the day's hours to the fan-out; its plan, slices and commit
    arn, store = fan_out_machine(), S3Store(stack.bucket)
    store_changes(stack, load_handler, context, 6)
    night = clock("2026-11-28T00:15:00+00:00")
    handing_off = CompactionService(
        Compactor(store),
        markers=LateMarkers(store),
        clock=night,
        fan_out=FanOut(arn, 1, 1, 2),
        state_machine=StateMachine(arn),
    )
    with recorder.recording():
        handing_off.handle({"detail-type": "Scheduled Event"}, context)
    fanning = load_handler(
        "compaction",
        stack.environment,
        FAN_OUT_STATE_MACHINE_ARN=arn,
        FAN_OUT_MIN_BYTES="1",
        FAN_OUT_PIECES="2",
    )
    run_fan_out(stack, fanning, context, recorder, {**MANUAL_EVENT, "plan": True})
    calls, recorder.calls = recorder.calls, []
    return calls


def fan_out_machine() -> str:
    """The stack's fan-out state machine on moto (which records executions without running them)."""
    arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
        name="changelake-fan-out",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/changelake-fan-out",
    )["stateMachineArn"]
    return str(arn)


def run_fan_out(
    stack: Stack, handler: Any, context: FakeLambdaContext, recorder: Recorder, plan: dict[str, Any]
) -> None:
    """The state machine's steps, as it sends them: the plan, each piece of its answer, the commit."""
    with recorder.recording():
        answer = handler.lambda_handler(plan, context)
        assert answer["pieces"], answer
        for piece in answer["pieces"]:
            handler.lambda_handler(piece, context)
        handler.lambda_handler(answer["commit"], context)


def run_redrive(stack: Stack, load_handler: HandlerLoader, recorder: Recorder) -> list[Grant]:
    """A DLQ message moved and one held back; a stream range replayed (with a claim check), one
    lost, one malformed; a failed compaction invocation and a failed snapshot invocation re-run."""
    stream_arn = str(create_stream_table("orders")["LatestStreamArn"])
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for index in range(2):
        item = realistic_item(random.Random(index), f"customer#{index}", 200)
        item["blob"] = {"B": random.Random(index).randbytes(3000 * index)}  # the second needs a claim check
        dynamodb.put_item(TableName="orders", Item=item)
    shard_id, records = shard_records(stream_arn)
    gone = stream_arn.rsplit("/", 1)[0] + "/2000-01-01T00:00:00.000"  # trimmed by TrimmedStream
    for body in (
        failure_record(stream_arn, shard_id, records[0], records[-1], len(records)),
        failure_record(gone, shard_id, records[0], records[-1], len(records)),
        "not a failure record",
    ):
        stack.sqs.send_message(QueueUrl=stack.stream_failure_queue_url, MessageBody=body)
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="a dead letter")
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody="redriven too often",
        MessageAttributes={REDRIVE_COUNT_ATTRIBUTE: {"DataType": "Number", "StringValue": "5"}},
    )
    async_url = stack.sqs.create_queue(QueueName="changelake-AsyncFailureQueue")["QueueUrl"]
    own_arn = COMPACTION_ARN.replace("compaction", "dlq-redrive")
    snapshot_arn = COMPACTION_ARN.replace("compaction", "snapshot")
    snapshot_event = {"table": "orders", "dt": "2026-11-27"}
    for arn, payload in ((COMPACTION_ARN, MANUAL_EVENT), (snapshot_arn, snapshot_event), (own_arn, {})):
        stack.sqs.send_message(QueueUrl=async_url, MessageBody=destination_record(arn, payload))
    redrive = load_handler(
        "dlq_redrive", stack.environment, MAX_MESSAGE_BYTES="2048", ASYNC_FAILURE_QUEUE_URL=async_url
    )
    assert redrive.replayer is not None
    redrive.replayer.reader = StreamReader(client=TrimmedStream(boto3.client("dynamodbstreams"), gone))
    with recorder.recording():
        summary = redrive.lambda_handler({}, FakeLambdaContext(function_name="changelake-dlq-redrive"))
    assert (summary["moved"], summary["left_too_many_redrives"]) == (1, 1)
    stream = summary["stream_failures"]
    assert (stream["ranges_replayed"], stream["ranges_lost"], stream["malformed"]) == (1, 1, 1), stream[
        "errors"
    ]
    rerun = summary["async_failures"]
    assert (rerun["failed"], rerun["superseded"]) == (2, 1)  # compaction and snapshot are not on moto
    calls, recorder.calls = recorder.calls, []
    return calls


def run_snapshot(
    stack: Stack, load_handler: HandlerLoader, context: FakeLambdaContext, recorder: Recorder
) -> list[Grant]:
    """Bootstrap from an export (after run_redrive made the table "orders"); build the days (and their
    Parquet, which a refused commit aborts and late data replaces), an hour
    from compacted/ (run_compaction compacted it) and, after a late file, from raw/ with the old parts
    deleted; a refused commit (uploads aborted); the nightly run clearing the aggregator's late
    markers; a hand-off when time runs short."""
    snapshot = load_handler("snapshot", stack.environment, SCHEMA_DIR=str(SCHEMAS))
    for path in sorted(EXPORT.rglob("*")):
        if path.is_file():
            key = f"exports/orders/{path.relative_to(EXPORT)}"
            stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=path.read_bytes())
    export_summary = f"s3://{stack.bucket}/exports/orders/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json"
    manual = {"table": "orders", "dt": "2026-11-27"}
    night = clock("2026-11-28T01:45:00+00:00")
    scan = {"export_id": "scan-1", "segments": 2}
    with recorder.recording():  # a bootstrap Scan: two segments and their commit
        for segment in range(2):
            segment_event = {**scan, "segment": segment, "read_units_per_second": 1000.0}
            snapshot.lambda_handler({"table": "orders", "scan": segment_event}, context)
        committed = {**scan, "commit": True, "started": "2026-11-27T12:00:00Z"}
        snapshot.lambda_handler({"table": "orders", "scan": committed}, context)
    with recorder.recording():
        snapshot.lambda_handler({"table": "orders", "bootstrap": export_summary}, context)
        snapshot.lambda_handler(manual, context)
    store_changes(stack, load_handler, context, 4)  # a late file: the aggregator marks it
    refusing = FailingPutS3(boto3.client("s3", region_name=REGION), "snapshot/")
    with recorder.recording():
        summary = SnapshotService(
            SnapshotBuilder(S3Store(stack.bucket, client=refusing)), clock=night
        ).handle(manual, context)
        store = S3Store(stack.bucket)
        SnapshotService(SnapshotBuilder(store, clock=night), markers=LateMarkers(store), clock=night).handle(
            {"detail-type": "Scheduled Event"}, context
        )
    assert len(summary.failed) == 1
    day, _ = SnapshotBuilder(store).read_day("orders", date(2026, 11, 27))
    assert day is not None
    other = {"orders": ColumnLayout.from_schema({"properties": {}})}  # another layout: a new generation
    refusing_parquet = FailingPutS3(boto3.client("s3", region_name=REGION), "snapshot-parquet/")
    with recorder.recording(), pytest.raises(DeliveryError):  # a refused Parquet commit aborts its uploads
        ParquetSnapshots(S3Store(stack.bucket, client=refusing_parquet), other).refresh(day)
    with recorder.recording():  # the new generation replaces the old one's file
        ParquetSnapshots(store, other).refresh(day)
    store_changes(stack, load_handler, context, 5)
    stack.s3.delete_object(Bucket=stack.bucket, Key="snapshot/orders/dt=2026-11-22/_manifest.json")
    short = FakeLambdaContext(function_name="changelake-snapshot", remaining_ms=1000)
    with recorder.recording(), pytest.raises(DeliveryError):
        snapshot.lambda_handler(manual, short)  # the hand-off's function is not on moto
    # the nightly run hands the day to the fan-out; its plan, buckets and commit
    arn = boto3.client("stepfunctions", region_name=REGION).list_state_machines()["stateMachines"][0][
        "stateMachineArn"
    ]
    store_changes(stack, load_handler, context, 7)
    handing_off = SnapshotService(
        SnapshotBuilder(store, clock=night),
        markers=LateMarkers(store),
        clock=night,
        fan_out=FanOut(arn, 1, 1, 2),
        state_machine=StateMachine(arn),
    )
    with recorder.recording():
        handing_off.handle({"detail-type": "Scheduled Event"}, context)
    fanning = load_handler(
        "snapshot",
        stack.environment,
        SCHEMA_DIR=str(SCHEMAS),
        FAN_OUT_STATE_MACHINE_ARN=arn,
        FAN_OUT_MIN_BYTES="1",
        FAN_OUT_PIECES="2",
    )
    run_fan_out(stack, fanning, context, recorder, {**manual, "plan": True})
    calls, recorder.calls = recorder.calls, []
    return calls


class TrimmedStream(WrappingClient):
    """The stream no longer holds anything of the stream ``gone`` (AWS's TrimmedDataAccessException)."""

    def __init__(self, real: Any, gone: str) -> None:
        super().__init__(real)
        self.gone = gone

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        if kwargs["StreamArn"] == self.gone:
            raise client_error("TrimmedDataAccessException", "GetShardIterator", status=400)
        return self.real.get_shard_iterator(**kwargs)


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("attaches", [False, True], ids=["ChangeTable", "attached tables"])
def test_no_allow_statement_has_a_wildcard_aws_does_not_require(
    translated: dict[str, Any], translated_attached: dict[str, Any], attaches: bool
) -> None:
    # GIVEN every Allow statement of the translated template (roles, key policy, resource policies),
    # with the stack's own table or with SourceStreamArns naming two tables
    template = translated_attached if attaches else translated
    resources = in_mode(template["Resources"], attaches=attaches)
    statements = [node for node in walk(resources) if node.get("Effect") == "Allow"]

    # WHEN the ones with a wildcard action, or a resource wider than a bucket prefix, are listed
    def wide(statement: dict[str, Any]) -> bool:
        actions = as_list(statement.get("Action", [])) + as_list(statement.get("NotAction", []))
        resources = [render(resource) for resource in as_list(statement.get("Resource", []))]
        prefix_only = [r for r in resources if "*" in r and not _is_bucket_prefix(r)]
        return any("*" in action for action in actions) or bool(prefix_only) or "NotResource" in statement

    offenders = [statement for statement in statements if wide(statement)]

    # THEN the only ones are those AWS requires, each named with its reason
    assert statements
    assert sorted(str(statement.get("Sid")) for statement in offenders) == sorted(REQUIRED_WILDCARDS)


def _is_bucket_prefix(resource: str) -> bool:
    """``${DataBucket.Arn}/<prefix>/*``: the objects under one fixed prefix of our bucket."""
    prefix = resource.removeprefix("${DataBucket.Arn}/")
    return prefix != resource and prefix.endswith("/*") and "*" not in prefix[:-2] and prefix[:-2] != ""


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_only_the_managed_policies_sam_attaches_for_logs_tracing_and_mappings(
    resources: dict[str, dict[str, Any]], function_id: str
) -> None:
    # GIVEN the function's execution role
    role = role_of(resources, function_id)

    # WHEN its managed policies are named
    names = {render(arn).rsplit(":policy/", 1)[1] for arn in role.get("ManagedPolicyArns", [])}

    # THEN they are among SAM's (logs, X-Ray, the event source mappings' pollers), nothing broader
    assert names <= SAM_MANAGED_POLICIES


def test_every_permission_is_used_by_the_code_and_every_call_is_permitted(
    resources: dict[str, dict[str, Any]],
    stack: Stack,
    load_handler: HandlerLoader,
    lambda_context: FakeLambdaContext,
    recorder: Recorder,
) -> None:
    # GIVEN each function's inline grants
    grants = {function_id: granted(role_of(resources, function_id)) for function_id in FUNCTIONS}

    # WHEN every function runs through all of its paths on moto, its AWS requests recorded
    recorded: dict[str, list[Grant]] = {
        **run_consumer_and_aggregator(stack, load_handler, lambda_context, recorder),
        "CompactionFunction": run_compaction(stack, load_handler, lambda_context, recorder),
        "DlqRedriveFunction": run_redrive(stack, load_handler, recorder),
        "SnapshotFunction": run_snapshot(stack, load_handler, lambda_context, recorder),
    }

    # THEN no grant is unused (but the destinations the Lambda service writes with the role), and
    # no request would be refused
    unused = {
        f: {g for g in grants[f] - SERVICE_GRANTS.get(f, set()) if not any(covers(g, c) for c in recorded[f])}
        for f in FUNCTIONS
    }
    refused = {f: {c for c in recorded[f] if not any(covers(g, c) for g in grants[f])} for f in FUNCTIONS}
    assert unused == {function_id: set() for function_id in FUNCTIONS}
    assert refused == {function_id: set() for function_id in FUNCTIONS}


def table_of(stream_arn: str) -> str:
    """``<table ARN>/stream/<label>`` -> the table ARN."""
    return stream_arn.split("/stream/", 1)[0]


def evaluate(value: Any) -> Any:
    """Fn::Join, Fn::Select and Fn::Split over literals (what the per-table grants derive) and the
    Ref to SourceStreamArns (the list it was given), evaluated."""
    if isinstance(value, list):
        return [evaluate(item) for item in value]
    if value == {"Ref": "SourceStreamArns"}:
        return list(ATTACHED_STREAMS)
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Fn::Join":
            return argument[0].join(evaluate(argument[1]))
        if name == "Fn::Select":
            return evaluate(argument[1])[argument[0]]
        if name == "Fn::Split":
            return str(evaluate(argument[1])).split(argument[0])
    return value


def dynamodb_grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (action, str(evaluate(resource)))
        for policy in role["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
        for resource in as_list(evaluate(statement["Resource"]))
    }


def test_attached_tables_grant_only_their_streams_and_tables(
    resources: dict[str, dict[str, Any]], translated_attached: dict[str, Any]
) -> None:
    # GIVEN the template with SourceStreamArns naming two existing tables' streams
    attached = translated_attached["Resources"]

    # WHEN each role's DynamoDB grants are read in that mode (per-table policies included)
    found = {f: dynamodb_grants(role_of(attached, f, attaches=True)) for f in FUNCTIONS}
    rest = {
        f: {g for g in role_grants(role_of(attached, f, attaches=True)) if not g[0].startswith("dynamodb:")}
        for f in FUNCTIONS
    }

    # THEN the poller reads those streams, redrive replays them, bootstrap describes those tables,
    # nothing names ChangeTable or any other stream or table; every other grant is unchanged
    streams, tables = set(ATTACHED_STREAMS), {table_of(arn) for arn in ATTACHED_STREAMS}
    poller = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
    assert found == {
        "StreamConsumerFunction": {(a, s) for a in poller for s in streams} | {("dynamodb:ListStreams", "*")},
        "AggregatorFunction": set(),
        "CompactionFunction": set(),
        "SnapshotFunction": {
            (a, table) for a in ("dynamodb:DescribeTable", "dynamodb:Scan") for table in tables
        },
        "DlqRedriveFunction": {
            (a, s) for a in ("dynamodb:GetShardIterator", "dynamodb:GetRecords") for s in streams
        },
    }
    own = {
        f: {g for g in role_grants(role_of(resources, f)) if not g[0].startswith("dynamodb:")}
        for f in FUNCTIONS
    }
    assert rest == own
    assert "ChangeTable" not in json.dumps([role_of(attached, f, attaches=True) for f in FUNCTIONS])


def role_grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (action, json.dumps(resource, sort_keys=True))
        for policy in role["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        for action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }

"""What the linters cannot see: the translated template keeps docs/contracts.md and the runbook."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from changelake.runs import RunKind, success_metric_name
from changelake.settings import RedriveSettings
from tests.template.conftest import ATTACHED_STREAMS, FUNCTIONS

pytestmark = pytest.mark.template


# docs/architecture.md, "Configuration": variable -> the functions that read it.
CONTRACT_ENV: dict[str, set[str]] = {
    "QUEUE_URL": {"StreamConsumerFunction", "DlqRedriveFunction"},
    "DLQ_URL": {"DlqRedriveFunction"},
    "BUCKET_NAME": set(FUNCTIONS),
    "RAW_PREFIX": {"AggregatorFunction", "CompactionFunction", "SnapshotFunction"},
    "COMPACTED_PREFIX": {"CompactionFunction", "SnapshotFunction"},
    "SNAPSHOT_PREFIX": {"SnapshotFunction"},
    "MAX_MESSAGE_BYTES": {"StreamConsumerFunction"},
    "QUARANTINE_PREFIX": {"StreamConsumerFunction", "AggregatorFunction"},
    "LOOKBACK_DAYS": {"CompactionFunction", "SnapshotFunction"},
}
#: The fan-out (changelake.fan_out): the state machine the nightly runs hand large days and hours to.
FAN_OUT_ENV = ("FAN_OUT_STATE_MACHINE_ARN", "FAN_OUT_MIN_BYTES", "FAN_OUT_PIECE_BYTES", "FAN_OUT_PIECES")
FAN_OUT_NAME = "${AWS::StackName}-fan-out"
FAN_OUT_ARN = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + FAN_OUT_NAME
# Beyond that table: what the redrive needs to replay stream ranges (which may be
# oversized or poison, hence claims and quarantine) and report lost ones, and compaction's file size.
EXTRA_ENV: dict[str, set[str]] = {
    "DlqRedriveFunction": {
        "STREAM_FAILURE_QUEUE_URL",
        "ASYNC_FAILURE_QUEUE_URL",
        "MAX_MESSAGE_BYTES",
        "QUARANTINE_PREFIX",
        "LOST_PREFIX",
        "MAX_REDRIVES",
        "CLAIMS_EXPIRATION_DAYS",
        "MESSAGE_LIFETIME_DAYS",
    },
    "CompactionFunction": {"COMPACTION_TARGET_BYTES", *FAN_OUT_ENV},
    # where the Parquet snapshots of the tables with a JSON Schema go (docs/snapshot.md)
    "SnapshotFunction": {"PARQUET_SNAPSHOT_PREFIX", *FAN_OUT_ENV},
}
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
# Read by every function (changelake.settings.LogSettings): item data in logs, for debugging only.
GLOBAL_ENV = POWERTOOLS_ENV | {"LOG_ITEM_DATA"}
ENV_VALUES: dict[str, Any] = {
    "QUEUE_URL": {"Ref": "ChangeQueue"},
    "DLQ_URL": {"Ref": "ChangeDLQ"},
    "STREAM_FAILURE_QUEUE_URL": {"Ref": "StreamFailureQueue"},
    "ASYNC_FAILURE_QUEUE_URL": {"Ref": "AsyncFailureQueue"},
    "LOG_ITEM_DATA": {"Ref": "LogItemData"},
    "BUCKET_NAME": {"Ref": "DataBucket"},
    "RAW_PREFIX": "raw",
    "COMPACTED_PREFIX": "compacted",
    "SNAPSHOT_PREFIX": "snapshot",
    "PARQUET_SNAPSHOT_PREFIX": "snapshot-parquet",
    "QUARANTINE_PREFIX": "quarantine",
    "LOST_PREFIX": "lost",
    "MAX_REDRIVES": "5",
    "CLAIMS_EXPIRATION_DAYS": "109",
    "MESSAGE_LIFETIME_DAYS": "18",
    "MAX_MESSAGE_BYTES": {"Ref": "MaxMessageBytes"},
    "LOOKBACK_DAYS": {"Ref": "LookbackDays"},
    "COMPACTION_TARGET_BYTES": {"Ref": "CompactionTargetBytes"},
    "POWERTOOLS_SERVICE_NAME": "changelake",
    "POWERTOOLS_METRICS_NAMESPACE": "Changelake",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
    "FAN_OUT_STATE_MACHINE_ARN": {"Fn::Sub": FAN_OUT_ARN},
    "FAN_OUT_PIECES": {"Ref": "FanOutPieces"},
}
#: Variables each function binds to parameters of its own.
FUNCTION_ENV_VALUES: dict[str, dict[str, Any]] = {
    "CompactionFunction": {
        "FAN_OUT_MIN_BYTES": {"Ref": "CompactionFanOutMinBytes"},
        "FAN_OUT_PIECE_BYTES": {"Ref": "CompactionFanOutPieceBytes"},
    },
    "SnapshotFunction": {
        "FAN_OUT_MIN_BYTES": {"Ref": "SnapshotFanOutMinBytes"},
        "FAN_OUT_PIECE_BYTES": {"Ref": "SnapshotFanOutPieceBytes"},
    },
}

BUCKET = "${DataBucket.Arn}"
DLQS = ("ChangeDLQ.Arn", "StreamFailureQueue.Arn", "AsyncFailureQueue.Arn")
# Every (action, resource) an execution role is granted by inline policies, SAM's included.
EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    "StreamConsumerFunction": {
        ("sqs:SendMessage", "ChangeQueue.Arn"),
        ("sqs:SendMessage", "StreamFailureQueue.Arn"),  # the stream mappings' on-failure destination
        # what Lambda's stream poller does with the role, on the followed stream only
        *{
            (action, "ChangeTable.StreamArn")
            for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator")
        },
        ("dynamodb:ListStreams", "*"),  # no resource-level permissions
        ("s3:PutObject", f"{BUCKET}/quarantine/*"),
        ("s3:PutObject", f"{BUCKET}/claims/*"),
    },
    "AggregatorFunction": {
        ("s3:PutObject", f"{BUCKET}/raw/*"),
        ("s3:PutObject", f"{BUCKET}/quarantine/*"),
        ("s3:PutObject", f"{BUCKET}/late/*"),
        ("s3:GetObject", f"{BUCKET}/claims/*"),
    },
    "CompactionFunction": {
        ("s3:ListBucket", "DataBucket.Arn"),
        ("s3:GetObject", f"{BUCKET}/raw/*"),
        ("s3:GetObject", f"{BUCKET}/compacted/*"),
        ("s3:DeleteObject", f"{BUCKET}/late/compaction/*"),
        ("s3:PutObject", f"{BUCKET}/compacted/*"),
        ("s3:DeleteObject", f"{BUCKET}/compacted/*"),
        ("s3:AbortMultipartUpload", f"{BUCKET}/compacted/*"),
        ("s3:PutObject", f"{BUCKET}/late/compaction/*"),  # a failed partition's retry marker
        ("s3:PutObject", f"{BUCKET}/_runs/*"),  # run records (changelake.runs)
        (
            "lambda:InvokeFunction",
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-compaction",
        ),
        ("sqs:SendMessage", "AsyncFailureQueue.Arn"),  # the on-failure destination (added by SAM)
        ("states:StartExecution", FAN_OUT_ARN),  # the nightly run hands large days and hours to it
    },
    "SnapshotFunction": {
        ("s3:ListBucket", "DataBucket.Arn"),
        ("s3:GetObject", f"{BUCKET}/raw/*"),
        ("s3:GetObject", f"{BUCKET}/compacted/*"),
        ("s3:GetObject", f"{BUCKET}/snapshot/*"),
        ("s3:GetObject", f"{BUCKET}/exports/*"),  # bootstrap exports
        ("s3:PutObject", f"{BUCKET}/snapshot/*"),
        ("s3:DeleteObject", f"{BUCKET}/snapshot/*"),
        ("s3:AbortMultipartUpload", f"{BUCKET}/snapshot/*"),
        # the Parquet snapshots, derived from snapshot/ and published the same way
        ("s3:GetObject", f"{BUCKET}/snapshot-parquet/*"),
        ("s3:PutObject", f"{BUCKET}/snapshot-parquet/*"),
        ("s3:DeleteObject", f"{BUCKET}/snapshot-parquet/*"),
        ("s3:AbortMultipartUpload", f"{BUCKET}/snapshot-parquet/*"),
        ("s3:DeleteObject", f"{BUCKET}/late/snapshot/*"),
        ("s3:PutObject", f"{BUCKET}/_runs/snapshot/*"),  # run records (changelake.runs)
        ("dynamodb:DescribeTable", "ChangeTable.Arn"),  # the bootstrap's key attributes
        ("dynamodb:Scan", "ChangeTable.Arn"),  # the bootstrap Scan of a table without PITR
        ("s3:PutObject", f"{BUCKET}/exports/*"),  # its segments and manifests
        (
            "lambda:InvokeFunction",
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-snapshot",
        ),
        ("sqs:SendMessage", "AsyncFailureQueue.Arn"),  # the on-failure destination (added by SAM)
        ("states:StartExecution", FAN_OUT_ARN),  # the nightly run hands large days and hours to it
    },
    "DlqRedriveFunction": {
        *{
            (action, queue)
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            )
            for queue in DLQS
        },
        ("sqs:SendMessage", "ChangeQueue.Arn"),
        *{
            (action, "ChangeTable.StreamArn")
            for action in ("dynamodb:GetShardIterator", "dynamodb:GetRecords")
        },
        ("lambda:InvokeFunction", "CompactionFunction.Arn"),  # re-runs failed asynchronous invocations
        ("lambda:InvokeFunction", "SnapshotFunction.Arn"),
        ("sqs:SendMessage", "AsyncFailureQueue.Arn"),  # the on-failure destination (added by SAM)
        ("s3:PutObject", f"{BUCKET}/lost/*"),
        ("s3:PutObject", f"{BUCKET}/claims/*"),
        ("s3:PutObject", f"{BUCKET}/quarantine/*"),
        ("s3:PutObject", f"{BUCKET}/_runs/*"),  # run records (changelake.runs)
    },
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """A readable, comparable form of a CloudFormation value (intrinsics unresolved)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return ".".join(as_list(value["Fn::GetAtt"]))
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    if isinstance(value, dict) and "Ref" in value:
        return f"Ref:{value['Ref']}"
    return json.dumps(value, sort_keys=True)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping anywhere inside node."""
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from walk(child)


def in_mode(node: Any, *, attaches: bool = False) -> Any:
    """``node`` with the ``Fn::If`` of the conditions SourceStreamArns decides resolved (the stack's
    own ChangeTable, or attached tables) and ``AWS::NoValue`` dropped; other conditions stay."""
    truth = {"CreatesChangeTable": not attaches, "AttachesTables": attaches}
    if isinstance(node, list):
        items = [in_mode(item, attaches=attaches) for item in node]
        return [item for item in items if item != {"Ref": "AWS::NoValue"}]
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] in truth:
            condition, when_true, when_false = node["Fn::If"]
            return in_mode(when_true if truth[condition] else when_false, attaches=attaches)
        return {key: in_mode(value, attaches=attaches) for key, value in node.items()}
    return node


def deployed(resource: dict[str, Any], *, attaches: bool = False) -> bool:
    """Whether CloudFormation creates ``resource`` in that mode (conditions of other parameters: yes)."""
    condition = str(resource.get("Condition", ""))
    decided = {
        "CreatesChangeTable": not attaches,
        "AttachesTables": attaches,
        "HasAthenaTables": not attaches,
    }
    return decided.get(condition, True)


def role_of(
    resources: dict[str, dict[str, Any]], function_id: str, *, attaches: bool = False
) -> dict[str, Any]:
    """The function's execution role in that mode, with the inline policies of the
    ``AWS::IAM::Policy`` resources attached to it (the grants per attached table) among its own."""
    role_ref = resources[function_id]["Properties"]["Role"]
    assert role_ref == {"Fn::GetAtt": [f"{function_id}Role", "Arn"]}
    role: dict[str, Any] = in_mode(resources[f"{function_id}Role"]["Properties"], attaches=attaches)
    attached = [
        in_mode(resource["Properties"], attaches=attaches)
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and deployed(resource, attaches=attaches)
        and {"Ref": f"{function_id}Role"} in resource["Properties"]["Roles"]
    ]
    return {**role, "Policies": [*role.get("Policies", []), *attached]}


def grants(role: dict[str, Any]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for policy in role.get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            assert statement["Effect"] == "Allow"
            for action in as_list(statement["Action"]):
                found.update((action, render(resource)) for resource in as_list(statement["Resource"]))
    return found


def mappings_of(
    resources: dict[str, dict[str, Any]], function_id: str, *, attaches: bool = False
) -> list[dict[str, Any]]:
    """The properties of the function's event source mappings in that mode."""
    return [
        in_mode(resource["Properties"], attaches=attaches)
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": function_id}
        and deployed(resource, attaches=attaches)
    ]


def mapping_ids(resources: dict[str, dict[str, Any]]) -> list[str]:
    """The logical IDs of the stream mappings."""
    return [
        logical_id
        for logical_id, resource in resources.items()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": "StreamConsumerFunction"}
    ]


def mapping_of(resources: dict[str, dict[str, Any]], function_id: str) -> dict[str, Any]:
    mappings = mappings_of(resources, function_id)
    assert len(mappings) == 1, mappings
    return mappings[0]


def parameter(translated: dict[str, Any], value: Any) -> dict[str, Any]:
    """The parameter a {"Ref": name} value points at."""
    assert isinstance(value, dict), f"expected a parameter reference, got {value!r}"
    assert set(value) == {"Ref"}, value
    found: dict[str, Any] = translated["Parameters"][value["Ref"]]
    return found


def lifecycle_rule(resources: dict[str, dict[str, Any]], rule_id: str) -> dict[str, Any]:
    rules = resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    matching = [rule for rule in rules if rule["Id"] == rule_id]
    assert len(matching) == 1
    assert matching[0]["Status"] == "Enabled"
    found: dict[str, Any] = matching[0]
    return found


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_every_function_runs_python313_on_arm64_traced_with_the_layer(
    resources: dict[str, dict[str, Any]], function_id: str
) -> None:
    # GIVEN the translated function
    properties = resources[function_id]["Properties"]

    # WHEN its runtime settings are read
    layer_refs = [layer["Ref"] for layer in properties["Layers"]]

    # THEN it is python3.13 on arm64 with active tracing, the handler contract, and the shared layer
    assert properties["Runtime"] == "python3.13"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["Handler"] == "app.lambda_handler"
    assert len(layer_refs) == 1
    layer = resources[layer_refs[0]]
    assert layer_refs[0].startswith("SharedLayer")
    assert layer["Type"] == "AWS::Lambda::LayerVersion"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


@pytest.mark.parametrize(
    ("function_id", "code_dir", "timeout", "memory"),
    [
        ("StreamConsumerFunction", "stream_consumer", 60, 512),
        ("AggregatorFunction", "aggregator", 60, 1024),
        ("CompactionFunction", "compaction", 900, 1024),
        ("SnapshotFunction", "snapshot", 900, 1769),
        ("DlqRedriveFunction", "dlq_redrive", 300, 512),
    ],
)
def test_function_code_timeout_and_memory(
    resources: dict[str, dict[str, Any]],
    code_folders: dict[str, str],
    function_id: str,
    code_dir: str,
    timeout: int,
    memory: int,
) -> None:
    # GIVEN the translated function
    properties = resources[function_id]["Properties"]

    # WHEN its code location and limits are read
    code_key = properties["Code"]["S3Key"]

    # THEN the code comes from functions/<dir>/ and the limits are the documented ones
    assert code_key == f"{function_id}.zip"
    assert code_folders[function_id].rstrip("/") == f"functions/{code_dir}"
    assert properties["Timeout"] == timeout
    assert properties["MemorySize"] == memory


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_environment_covers_exactly_what_the_handler_reads(
    resources: dict[str, dict[str, Any]], function_id: str
) -> None:
    # GIVEN the variables the docs say this function reads, plus its documented extras
    expected = {name for name, readers in CONTRACT_ENV.items() if function_id in readers}
    expected |= EXTRA_ENV.get(function_id, set()) | GLOBAL_ENV

    # WHEN the translated function's environment (Globals merged) is read
    variables: dict[str, Any] = resources[function_id]["Properties"]["Environment"]["Variables"]

    # THEN it holds exactly those variables, each bound to the right resource, parameter or prefix
    assert set(variables) == expected
    values = {**ENV_VALUES, **FUNCTION_ENV_VALUES.get(function_id, {})}
    assert {name: variables[name] for name in expected} == {name: values[name] for name in expected}


def test_max_message_bytes_ties_the_queue_to_the_consumer(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the queue and the consumer
    queue = resources["ChangeQueue"]["Properties"]
    consumer_env = resources["StreamConsumerFunction"]["Properties"]["Environment"]["Variables"]

    # WHEN the size limits are compared
    limit = parameter(translated, queue["MaximumMessageSize"])

    # THEN both come from MaxMessageBytes, bounded by SQS's limits
    assert queue["MaximumMessageSize"] == consumer_env["MAX_MESSAGE_BYTES"] == {"Ref": "MaxMessageBytes"}
    assert (limit["MinValue"], limit["MaxValue"], limit["Default"]) == (1024, 1048576, 262144)


def test_stream_mapping_bisects_retries_finitely_and_sends_failures_to_the_failure_queue(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the DynamoDB Streams event source mapping of the consumer
    mapping = mapping_of(resources, "StreamConsumerFunction")

    # WHEN its retry settings are resolved to their parameters
    retries = parameter(translated, mapping["MaximumRetryAttempts"])
    record_age = parameter(translated, mapping["MaximumRecordAgeInSeconds"])

    # THEN a poison batch is bisected, retried a finite number of times, and then recorded
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ChangeTable", "StreamArn"]}
    assert mapping_ids(resources) == ["StreamConsumerFunctionChangeTableStream"]  # as SAM named it before
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert retries["Default"] == 5
    assert 0 <= retries["MinValue"] <= retries["MaxValue"] <= 10000  # -1 (forever) is not allowed
    assert record_age["Default"] == 21600
    assert 60 <= record_age["MinValue"] <= record_age["MaxValue"] <= 86400  # within the stream's 24 h
    assert mapping["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}
    }
    assert parameter(translated, mapping["BatchSize"])["Default"] == 1000
    assert parameter(translated, mapping["MaximumBatchingWindowInSeconds"])["Default"] == 5


def test_attached_streams_are_followed_with_the_same_safety_settings(
    resources: dict[str, dict[str, Any]], translated_attached: dict[str, Any]
) -> None:
    # GIVEN the template with SourceStreamArns naming two existing tables' streams
    attached = translated_attached["Resources"]

    # WHEN the consumer's mappings in that mode are read
    mappings = mappings_of(attached, "StreamConsumerFunction", attaches=True)

    # THEN there is one per stream, each with exactly the settings of ChangeTable's mapping
    own = mapping_of(resources, "StreamConsumerFunction")
    assert sorted(mapping["EventSourceArn"] for mapping in mappings) == sorted(ATTACHED_STREAMS)
    for mapping in mappings:
        assert {**mapping, "EventSourceArn": own["EventSourceArn"]} == own


def test_attached_tables_mode_creates_no_table_and_refers_to_none(
    translated_attached: dict[str, Any],
) -> None:
    # GIVEN the template with SourceStreamArns set
    resources, outputs = translated_attached["Resources"], translated_attached["Outputs"]

    # WHEN what CloudFormation creates in that mode is listed, its conditions decided
    created = {
        logical_id: in_mode(resource, attaches=True)
        for logical_id, resource in resources.items()
        if deployed(resource, attaches=True)
    }
    shown = {
        key: in_mode(output, attaches=True)
        for key, output in outputs.items()
        if deployed(output, attaches=True)
    }

    # THEN there is no ChangeTable, and nothing created or output refers to it
    assert resources["ChangeTable"]["Condition"] == "CreatesChangeTable"
    assert "ChangeTable" not in created
    references = [
        node
        for node in walk({**created, **shown})
        if node.get("Ref") == "ChangeTable"
        or as_list(node.get("Fn::GetAtt", [""]))[0].startswith("ChangeTable")
        or "${ChangeTable" in json.dumps(node.get("Fn::Sub", ""))
    ]
    assert references == []
    assert shown["FollowedStreamArns"]["Value"] == {"Fn::Join": [",", {"Ref": "SourceStreamArns"}]}


def test_sqs_mapping_reports_partial_failures_and_batches(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the SQS event source mapping of the aggregator
    mapping = mapping_of(resources, "AggregatorFunction")

    # WHEN its batching window is resolved
    window = parameter(translated, mapping["MaximumBatchingWindowInSeconds"])

    # THEN it reads ChangeQueue, reports item failures, and batches up to 5 minutes
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ChangeQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert (window["Default"], window["MaxValue"]) == (60, 300)
    assert window["MinValue"] >= 1  # SQS needs a window for batches above 10
    assert parameter(translated, mapping["BatchSize"])["Default"] == 1000


def test_change_queue_redrives_to_the_dlq_and_outlasts_the_aggregator(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the queues and the aggregator
    queue = resources["ChangeQueue"]["Properties"]
    aggregator_timeout = resources["AggregatorFunction"]["Properties"]["Timeout"]
    window = parameter(
        translated, mapping_of(resources, "AggregatorFunction")["MaximumBatchingWindowInSeconds"]
    )

    # WHEN the redrive policy and visibility timeout are read
    redrive = queue["RedrivePolicy"]

    # THEN 3 failed receives move a message to ChangeDLQ, and no message reappears while in flight
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["ChangeDLQ", "Arn"]}, "maxReceiveCount": 3}
    assert queue["VisibilityTimeout"] >= 6 * aggregator_timeout + window["MaxValue"]
    assert queue["MessageRetentionPeriod"] == 4 * 86400
    for queue_id in ("ChangeQueue", "ChangeDLQ", "StreamFailureQueue"):
        managed_sse = resources[queue_id]["Properties"]["SqsManagedSseEnabled"]
        assert managed_sse == {"Fn::If": ["UsesCustomerManagedKey", {"Ref": "AWS::NoValue"}, True]}
    for queue_id in ("ChangeDLQ", "StreamFailureQueue"):
        assert resources[queue_id]["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert "FifoQueue" not in queue


def test_change_table_streams_new_and_old_images(resources: dict[str, dict[str, Any]]) -> None:
    # GIVEN the table
    table = resources["ChangeTable"]["Properties"]

    # WHEN its keys and features are read
    keys = {key["AttributeName"]: key["KeyType"] for key in table["KeySchema"]}

    # THEN it is on-demand, streams both images, expires by TTL and has PITR
    assert keys == {"pk": "HASH", "sk": "RANGE"}
    assert table["TableName"] == {"Fn::Sub": "${AWS::StackName}-changes"}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_bucket_lifecycle_tiers_raw_and_cleans_up_old_versions_and_uploads(
    resources: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the bucket's lifecycle rules
    raw = lifecycle_rule(resources, "raw-tiering")

    # WHEN raw/'s transitions are read
    transitions = {t["StorageClass"]: t["TransitionInDays"] for t in raw["Transitions"]}

    # THEN raw/ moves to IA at 30 and Glacier at 90 days, old versions go after 7 days and the
    # delete markers left alone after them too (late/ markers are cleared after every run),
    # and stale multipart uploads are aborted
    assert raw["Prefix"] == "raw/"
    assert transitions == {"STANDARD_IA": 30, "GLACIER": 90}
    versions = lifecycle_rule(resources, "expire-noncurrent-versions")
    assert versions["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert versions["ExpiredObjectDeleteMarker"] is True
    assert "Prefix" not in versions
    assert lifecycle_rule(resources, "abort-incomplete-multipart-uploads")[
        "AbortIncompleteMultipartUpload"
    ] == {"DaysAfterInitiation": 1}


def redrive_settings_of(resources: dict[str, dict[str, Any]]) -> RedriveSettings:
    """The settings DlqRedriveFunction runs with: read from the template's literal variables
    (placeholders for the references), so a missing variable gives the code's default."""
    variables = resources["DlqRedriveFunction"]["Properties"]["Environment"]["Variables"]
    literal = {name: value for name, value in variables.items() if isinstance(value, str)}
    placeholders = {
        "BUCKET_NAME": "placeholder-bucket",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/queue",
        "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    }
    return RedriveSettings.from_environ({**placeholders, **literal})


def test_claims_expire_exactly_when_no_message_can_reference_them_any_more(
    resources: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the queues' retention, the redrive function's settings and the claims rule
    queue_seconds = resources["ChangeQueue"]["Properties"]["MessageRetentionPeriod"]
    dlq_seconds = resources["ChangeDLQ"]["Properties"]["MessageRetentionPeriod"]
    settings = redrive_settings_of(resources)
    claims = lifecycle_rule(resources, "expire-claims")

    # WHEN the longest time a message can point at a claim is derived: the first message and each
    # of its redriven copies (a new message every time) live at most ChangeQueue + ChangeDLQ
    # retention, and one more day covers the last read of a message received just before it expires
    lifetime_days = math.ceil((queue_seconds + dlq_seconds) / 86400)
    references_for_days = (settings.max_redrives + 1) * lifetime_days + 1

    # THEN the claims expire exactly then (docs/architecture.md, "How it works"): never under a live message,
    # and not later than the rule asks; and the function checks its limit against the same figures
    assert claims["Prefix"] == "claims/"
    assert claims["ExpirationInDays"] == references_for_days
    assert settings.message_lifetime_days == lifetime_days
    assert settings.claims_expiration_days == claims["ExpirationInDays"]


def test_bucket_is_private_encrypted_versioned_and_tls_only(resources: dict[str, dict[str, Any]]) -> None:
    # GIVEN the bucket and its policy
    bucket = resources["DataBucket"]["Properties"]
    statements = resources["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    # WHEN the TLS statement is looked up
    tls_denials = [
        statement
        for statement in statements
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]

    # THEN every public path is closed, objects are encrypted and versioned, and plain HTTP is denied
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    _, with_key, without_key = encryption["ServerSideEncryptionByDefault"]["Fn::If"]
    assert (with_key["SSEAlgorithm"], without_key["SSEAlgorithm"]) == ("aws:kms", "AES256")
    assert resources["DataBucketPolicy"]["Properties"]["Bucket"] == {"Ref": "DataBucket"}
    assert len(tls_denials) == 1
    assert tls_denials[0]["Action"] == "s3:*"
    assert tls_denials[0]["Principal"] == "*"
    assert {render(resource) for resource in tls_denials[0]["Resource"]} == {
        "DataBucket.Arn",
        "${DataBucket.Arn}/*",
    }


def test_no_allow_statement_has_a_wildcard_action(translated: dict[str, Any]) -> None:
    # GIVEN every policy statement in the translated template (inline, SAM-generated, resource policies)
    statements = [node for node in walk(translated["Resources"]) if "Effect" in node and "Action" in node]

    # WHEN the Allow statements' actions are collected (but the optional key's account statement:
    # AWS's default key policy, which lets the account administer the key and delegate to IAM)
    allowed = [
        (statement, as_list(statement["Action"]))
        for statement in statements
        if statement["Effect"] == "Allow" and statement.get("Sid") != "AccountAdministersAndDelegatesToIam"
    ]

    # THEN none uses a wildcard action or NotAction
    assert allowed
    assert [statement for statement, actions in allowed if any("*" in action for action in actions)] == []
    assert [
        node
        for node in walk(translated["Resources"])
        if node.get("Effect") == "Allow" and "NotAction" in node
    ] == []


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_execution_role_grants_exactly_the_least_privilege_set(
    resources: dict[str, dict[str, Any]], function_id: str
) -> None:
    # GIVEN the function's execution role
    role = role_of(resources, function_id)

    # WHEN its inline grants and managed policies are collected
    managed = [render(arn) for arn in role.get("ManagedPolicyArns", [])]

    # THEN the inline grants are exactly the documented ones, and no broad managed policy is attached
    assert grants(role) == EXPECTED_GRANTS[function_id]
    assert [arn for arn in managed if "FullAccess" in arn or "AdministratorAccess" in arn] == []


def test_compaction_lists_only_raw_compacted_and_its_late_markers(
    resources: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the compaction role's ListBucket statement
    statements = [
        statement
        for policy in role_of(resources, "CompactionFunction").get("Policies", [])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        if "s3:ListBucket" in as_list(statement["Action"])
    ]

    # WHEN its prefix condition is read
    (statement,) = statements
    prefixes = set(statement["Condition"]["StringLike"]["s3:prefix"])

    # THEN it may list raw/, compacted/ and its own late-data markers, nothing else
    assert prefixes == {"raw", "raw/*", "compacted", "compacted/*", "late/compaction", "late/compaction/*"}


def test_snapshot_lists_only_raw_snapshot_its_parquet_and_its_late_markers(
    resources: dict[str, dict[str, Any]],
) -> None:
    # GIVEN the snapshot role's ListBucket statement
    statements = [
        statement
        for policy in role_of(resources, "SnapshotFunction").get("Policies", [])
        for statement in as_list(policy["PolicyDocument"]["Statement"])
        if "s3:ListBucket" in as_list(statement["Action"])
    ]

    # WHEN its prefix condition is read
    (statement,) = statements
    prefixes = set(statement["Condition"]["StringLike"]["s3:prefix"])

    # THEN it may list raw/, snapshot/, snapshot-parquet/ and its own late-data markers, nothing else
    assert prefixes == {
        "raw",
        "raw/*",
        "snapshot",
        "snapshot/*",
        "snapshot-parquet/*",
        "late/snapshot",
        "late/snapshot/*",
    }


def test_compaction_is_scheduled_and_may_reinvoke_itself(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the compaction function and its schedules
    function = resources["CompactionFunction"]["Properties"]
    schedules = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
        and resource["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["CompactionFunction", "Arn"]}
    ]

    # WHEN the name it invokes is compared with its own name
    (invoke_arn,) = [
        resource
        for action, resource in grants(role_of(resources, "CompactionFunction"))
        if action == "lambda:InvokeFunction"
    ]

    # THEN it has a fixed name that its invoke permission targets, a nightly schedule from the
    # CompactionSchedule parameter, and room for large partitions
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-compaction"}
    assert invoke_arn.endswith(":function:${AWS::StackName}-compaction")
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == {"Ref": "CompactionSchedule"}
    assert translated["Parameters"]["CompactionSchedule"]["Default"] == "cron(15 0 * * ? *)"
    assert "State" not in schedules[0] or schedules[0]["State"] == "ENABLED"
    assert function["EphemeralStorage"] == {"Size": 2048}
    assert parameter(translated, function["Environment"]["Variables"]["LOOKBACK_DAYS"])["Default"] == 2
    target_bytes = parameter(translated, function["Environment"]["Variables"]["COMPACTION_TARGET_BYTES"])
    assert target_bytes["Default"] == 134217728


def test_snapshot_runs_nightly_after_compaction_and_may_reinvoke_itself(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the snapshot function, its schedule and compaction's
    function = resources["SnapshotFunction"]["Properties"]
    schedules = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
        and resource["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["SnapshotFunction", "Arn"]}
    ]
    parameters = translated["Parameters"]

    # WHEN the default times are compared (cron(M H * * ? *), UTC)
    def minutes(expression: str) -> int:
        minute, hour = expression.removeprefix("cron(").split()[:2]
        return int(hour) * 60 + int(minute)

    # THEN it runs every night at least an hour after compaction starts, with the scheduled event's
    # shape, may invoke itself by its fixed name, and has its own log group
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == {"Ref": "SnapshotSchedule"}
    assert (
        minutes(parameters["SnapshotSchedule"]["Default"])
        >= minutes(parameters["CompactionSchedule"]["Default"]) + 60
    )
    assert json.loads(schedules[0]["Target"]["Input"])["detail-type"] == "Scheduled Event"
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-snapshot"}
    assert function["EphemeralStorage"] == {"Size": 2048}
    assert parameter(translated, function["Environment"]["Variables"]["LOOKBACK_DAYS"])["Default"] == 2
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "SnapshotLogGroup"}}


def test_redrive_schedule_is_off_unless_configured(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the redrive function's schedules
    schedules = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Scheduler::Schedule"
        and resource["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["DlqRedriveFunction", "Arn"]}
    ]

    # WHEN the controlling condition is read
    condition = translated["Conditions"]["HasRedriveSchedule"]

    # THEN with the default (empty) RedriveSchedule the schedule is disabled: manual invoke only
    assert translated["Parameters"]["RedriveSchedule"]["Default"] == ""
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "RedriveSchedule"}, ""]}]}
    assert len(schedules) == 1
    assert schedules[0]["State"] == {"Fn::If": ["HasRedriveSchedule", "ENABLED", "DISABLED"]}
    assert json.loads(schedules[0]["Target"]["Input"]) == {"max_messages": 1000, "dry_run": False}


@pytest.mark.parametrize(
    ("alarm_id", "namespace", "metric", "dimensions", "comparison", "threshold"),
    [
        (
            "ChangeDLQDepthAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["ChangeDLQ", "QueueName"]}}],
            "GreaterThanThreshold",
            0,
        ),
        (
            "StreamFailureQueueDepthAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}}],
            "GreaterThanThreshold",
            0,
        ),
        (
            "AsyncFailureQueueDepthAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]}}],
            "GreaterThanThreshold",
            0,
        ),
        (
            "SnapshotErrorsAlarm",
            "AWS/Lambda",
            "Errors",
            [{"Name": "FunctionName", "Value": {"Ref": "SnapshotFunction"}}],
            "GreaterThanOrEqualToThreshold",
            1,
        ),
        (
            "FanOutExecutionsFailedAlarm",
            "AWS/States",
            "ExecutionsFailed",
            [{"Name": "StateMachineArn", "Value": {"Ref": "FanOutStateMachine"}}],
            "GreaterThanOrEqualToThreshold",
            1,
        ),
        (
            "LostRangesAlarm",
            "Changelake",
            "LostRanges",
            [{"Name": "service", "Value": "changelake"}],
            "GreaterThanOrEqualToThreshold",
            1,
        ),
    ],
)
def test_alarms_watch_the_failure_paths(
    resources: dict[str, dict[str, Any]],
    alarm_id: str,
    namespace: str,
    metric: str,
    dimensions: list[dict[str, Any]],
    comparison: str,
    threshold: int,
) -> None:
    # GIVEN the alarm
    alarm = resources[alarm_id]

    # WHEN its metric is read
    properties = alarm["Properties"]

    # THEN it fires on the first message or lost range
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert (properties["Namespace"], properties["MetricName"]) == (namespace, metric)
    assert properties["Dimensions"] == dimensions
    assert (properties["ComparisonOperator"], properties["Threshold"]) == (comparison, threshold)
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("kind", ["compaction", "snapshot"])
def test_a_nightly_run_without_a_success_for_a_day_alarms_and_is_on_the_dashboard(
    resources: dict[str, dict[str, Any]], kind: RunKind
) -> None:
    # GIVEN the metric each successful run of ``kind`` publishes (changelake.runs)
    metric = success_metric_name(kind)

    # WHEN the alarms on it and the dashboard are read
    alarms = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"]["MetricName"] == metric
    ]
    dashboard = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])

    # THEN one alarm fires when no run succeeded for more than a day, a run that never reports
    # (missing data) included, and notifies the optional topic both ways
    (alarm,) = alarms
    assert alarm["Namespace"] == "Changelake"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "changelake"}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Sum",
        "LessThanThreshold",
        1,
    )
    assert int(alarm["Period"]) * int(alarm["EvaluationPeriods"]) > 24 * 3600
    assert int(alarm["DatapointsToAlarm"]) == int(alarm["EvaluationPeriods"])
    assert alarm["TreatMissingData"] == "breaching"
    topic = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    assert alarm["AlarmActions"] == alarm["OKActions"] == topic
    # AND a dashboard widget plots the results of the runs
    plotted = {line[1] for widget in dashboard["widgets"] for line in widget["properties"]["metrics"]}
    assert metric in plotted


def test_every_parameter_is_bounded(translated: dict[str, Any]) -> None:
    # GIVEN the template's parameters
    parameters: dict[str, dict[str, Any]] = translated["Parameters"]

    # WHEN each is checked for bounds
    unbounded = [
        name
        for name, spec in parameters.items()
        if not (
            "AllowedValues" in spec
            or ("MinValue" in spec and "MaxValue" in spec)
            or (spec["Type"] in ("String", "CommaDelimitedList") and "AllowedPattern" in spec)
        )
    ]

    # THEN none is unbounded, and each has a default so `sam deploy` works without overrides
    assert unbounded == []
    assert [name for name, spec in parameters.items() if "Default" not in spec] == []


def test_outputs_name_what_a_user_needs(translated: dict[str, Any]) -> None:
    # GIVEN the template's outputs
    outputs: dict[str, dict[str, Any]] = translated["Outputs"]

    # WHEN their names are listed
    names = set(outputs)

    # THEN the table, stream, queues, bucket, layer and every function are there
    assert {
        "ChangeTableName",
        "ChangeTableStreamArn",
        "ChangeQueueUrl",
        "ChangeDLQUrl",
        "StreamFailureQueueUrl",
        "AsyncFailureQueueUrl",
        "DataBucketName",
        "SharedLayerArn",
        *(f"{function_id}Name" for function_id in FUNCTIONS),
        *(f"{function_id}Arn" for function_id in FUNCTIONS),
        "FanOutStateMachineArn",
    } <= names


ASYNC_FUNCTIONS = ("CompactionFunction", "DlqRedriveFunction")


@pytest.mark.parametrize("function_id", ASYNC_FUNCTIONS)
def test_asynchronous_invocations_retry_a_bounded_time_then_reach_the_failure_queue(
    resources: dict[str, dict[str, Any]], function_id: str
) -> None:
    # GIVEN a function invoked asynchronously (its schedule; compaction's own hand-off)
    configs = [
        resource["Properties"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
        and resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]

    # WHEN its asynchronous invocation configuration is read
    (config,) = configs

    # THEN retries and event age are bounded and a failure lands in AsyncFailureQueue, which the
    # redrive function reads and an alarm watches
    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 6 * 3600
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["AsyncFailureQueue", "Arn"]
    }
    assert resources["AsyncFailureQueueDepthAlarm"]["Properties"]["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["AsyncFailureQueue", "QueueName"]
    }


@pytest.mark.parametrize(
    ("function_id", "limit"),
    [
        ("CompactionFunction", {"Ref": "FanOutConcurrency"}),
        ("SnapshotFunction", {"Ref": "FanOutConcurrency"}),
        ("DlqRedriveFunction", 1),
    ],
)
def test_functions_a_runaway_would_hurt_have_reserved_concurrency(
    resources: dict[str, dict[str, Any]], function_id: str, limit: Any
) -> None:
    # GIVEN the functions whose extra copies only race (redrive) or multiply S3 requests (compaction,
    # snapshot: as many as the fan-out runs pieces at once)
    properties = resources[function_id]["Properties"]

    # WHEN their concurrency is read
    reserved = properties.get("ReservedConcurrentExecutions")

    # THEN it is capped
    assert reserved == limit


def test_a_customer_managed_key_is_optional_and_covers_bucket_queues_topic_table_and_logs(
    translated: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> None:
    # GIVEN the key, its condition and every resource that stores data
    condition = translated["Conditions"]["UsesCustomerManagedKey"]
    queues = [name for name, resource in resources.items() if resource["Type"] == "AWS::SQS::Queue"]
    log_groups = [name for name, resource in resources.items() if resource["Type"] == "AWS::Logs::LogGroup"]
    roles = [f"{function_id}Role" for function_id in FUNCTIONS]

    # WHEN each resource's encryption setting is read
    key_ref = {"Ref": "DataKey"}
    key_arn = {"Fn::GetAtt": ["DataKey", "Arn"]}
    no_value = {"Ref": "AWS::NoValue"}
    bucket = resources["DataBucket"]["Properties"]
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    # THEN everything is off by default and uses the one key when the parameter says so
    assert translated["Parameters"]["CustomerManagedKey"]["Default"] == "false"
    assert condition == {"Fn::Equals": [{"Ref": "CustomerManagedKey"}, "true"]}
    for name in ("DataKey", "DataKeyAlias", "DataKeyUsePolicy"):
        assert resources[name]["Condition"] == "UsesCustomerManagedKey"
    assert resources["DataKey"]["Properties"]["EnableKeyRotation"] is True
    assert len(queues) == 4
    for name in queues:
        properties = resources[name]["Properties"]
        assert properties["KmsMasterKeyId"] == {"Fn::If": ["UsesCustomerManagedKey", key_ref, no_value]}
    for name in log_groups:
        properties = resources[name]["Properties"]
        assert properties["KmsKeyId"] == {"Fn::If": ["UsesCustomerManagedKey", key_arn, no_value]}
    assert encryption[0]["ServerSideEncryptionByDefault"]["Fn::If"][1] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::If": ["UsesCustomerManagedKey", key_ref, no_value]}
    table = resources["ChangeTable"]["Properties"]["SSESpecification"]
    assert table["Fn::If"][1]["KMSMasterKeyId"] == key_ref
    assert sorted(ref["Ref"] for ref in resources["DataKeyUsePolicy"]["Properties"]["Roles"]) == sorted(roles)

"""`changelake attach` and `bootstrap` against the local stack deployed with SourceStreamArns: tables
the user already had (items from before their streams), exported or scanned, handed to SnapshotFunction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from changelake_cli.errors import Exit
from changelake_local.aws import client
from changelake_local.deploy import deploy
from changelake_local.deployed_stack import DeployedStack
from changelake_local.endpoint import aws_environment
from changelake_local.functions import applied_environment
from tests.integration.conftest import LocalStack, run_cli

pytestmark = pytest.mark.integration

STACK = "changelake-attached"
#: Tables as a user has them: items first, then the stream; "orders" and "invoices" with
#: point-in-time recovery, "ledger" without it; "elsewhere" is not attached.
ITEMS = {"orders": 25, "invoices": 7, "ledger": 3, "elsewhere": 2}
WITH_RECOVERY = ("orders", "invoices")
ATTACHED = ("orders", "invoices", "ledger")


@dataclass
class Attached:
    endpoint: str
    stack: DeployedStack
    dynamodb: Any
    s3: Any

    def cli(self, *argv: str) -> Any:
        return run_cli("--endpoint", self.endpoint, "--stack", STACK, *argv)


def existing_table(dynamodb: Any, name: str, items: int, view_type: str | None = "NEW_AND_OLD_IMAGES") -> str:
    """A table with ``items`` items, its stream (``view_type``; None: none) turned on afterwards; its
    stream ARN."""
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    for index in range(items):
        dynamodb.put_item(
            TableName=name, Item={"id": {"S": f"{name}#{index}"}, "total": {"N": f"{index}.10"}}
        )
    if name in WITH_RECOVERY:
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    if view_type is None:
        return ""
    described = dynamodb.update_table(
        TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type}
    )
    return str(described["TableDescription"]["LatestStreamArn"])


@pytest.fixture(scope="module")
def attached(local_stack: LocalStack) -> Attached:
    """A second stack on the local endpoint, following three of the user's tables."""
    url = local_stack.endpoint
    clients = {name: client(name, url) for name in ("dynamodb", "s3")}
    streams = {name: existing_table(clients["dynamodb"], name, count) for name, count in ITEMS.items()}
    existing_table(clients["dynamodb"], "unstreamed", 4, view_type=None)
    existing_table(clients["dynamodb"], "keys-only", 1, view_type="KEYS_ONLY")
    with applied_environment(aws_environment(url)):
        stack = deploy(
            url,
            stack_name=STACK,
            parameters={"SourceStreamArns": ",".join(streams[name] for name in ATTACHED)},
            seed=None,
        )
    return Attached(url, stack, clients["dynamodb"], clients["s3"])


def exports_of(attached: Attached, table: str) -> list[str]:
    arn = attached.dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
    return [
        summary["ExportArn"] for summary in attached.dynamodb.list_exports(TableArn=arn)["ExportSummaries"]
    ]


def test_the_stack_follows_the_attached_tables_and_creates_none(attached: Attached) -> None:
    # GIVEN the stack deployed with SourceStreamArns naming three tables
    # WHEN its stream mappings and tables are read
    sources = sorted(spec.source_arn.split("/")[1] for spec in attached.stack.mappings() if spec.is_stream)

    # THEN it follows exactly those streams and made no table of its own
    assert sources == sorted(ATTACHED)
    assert not attached.stack.creates_change_table
    assert "ChangeTable" not in attached.stack.physical_ids


def test_bootstrap_exports_the_table_and_hands_the_export_to_snapshot(attached: Attached) -> None:
    # GIVEN an attached table with point-in-time recovery and 25 items from before its stream
    # WHEN it is bootstrapped
    ran = attached.cli("bootstrap", "--table", "orders", "--json")

    # THEN a full export to the stack's bucket finished (progress shown) and SnapshotFunction read
    # every item of it into the table's bootstrap base
    assert ran.code == Exit.OK, ran.err
    result = json.loads(ran.out)
    export = result["export"]["export"]
    assert (export["status"], export["bucket"], export["prefix"]) == (
        "COMPLETED",
        attached.stack.bucket,
        "exports/orders",
    )
    assert result["export"]["resumed"] is False
    assert "COMPLETED" in ran.err
    assert result["snapshot"]["error"] is None
    assert result["snapshot"]["result"]["items_read"] == ITEMS["orders"]
    base = attached.s3.list_objects_v2(Bucket=attached.stack.bucket, Prefix="snapshot/orders/_bootstrap/")
    assert base.get("KeyCount", 0) > 0


def test_an_interrupted_bootstrap_resumes_its_export(attached: Attached) -> None:
    # GIVEN a bootstrap interrupted after it started the export (the export is there, nothing else)
    table_arn = attached.dynamodb.describe_table(TableName="invoices")["Table"]["TableArn"]
    started = attached.dynamodb.export_table_to_point_in_time(
        TableArn=table_arn,
        S3Bucket=attached.stack.bucket,
        S3Prefix="exports/invoices",
        ExportFormat="DYNAMODB_JSON",
    )["ExportDescription"]["ExportArn"]

    # WHEN bootstrap runs again, twice
    first = attached.cli("bootstrap", "--table", "invoices", "--json")
    second = attached.cli("bootstrap", "--table", "invoices", "--json")

    # THEN both use that export (no second one is started) and the snapshot gets its 7 items
    assert (first.code, second.code) == (Exit.OK, Exit.OK), first.err + second.err
    for ran in (first, second):
        result = json.loads(ran.out)
        assert (result["export"]["export"]["arn"], result["export"]["resumed"]) == (started, True)
        assert result["snapshot"]["result"]["items_read"] == ITEMS["invoices"]
    assert exports_of(attached, "invoices") == [started]


def test_a_table_without_point_in_time_recovery_is_scanned_in_segments_by_the_function(
    attached: Attached,
) -> None:
    # GIVEN an attached table without point-in-time recovery (3 items from before its stream)
    # WHEN it is bootstrapped
    ran = attached.cli("bootstrap", "--table", "ledger", "--json")

    # THEN SnapshotFunction scanned it in segments and committed them in the export layout, which
    # the bootstrap then read whole; no DynamoDB export was made
    assert ran.code == Exit.OK, ran.err
    result = json.loads(ran.out)
    assert result["method"] == "scan"
    segments = result["scan"]["segments"]
    assert len(segments) == result["scan"]["plan"]["segments"] >= 2
    assert sum(segment["result"]["items"] for segment in segments) == ITEMS["ledger"]
    assert "no point-in-time recovery: scanning it" in ran.err
    assert result["snapshot"]["result"]["items_read"] == ITEMS["ledger"]
    assert exports_of(attached, "ledger") == []


def test_a_table_the_stack_does_not_follow_or_that_does_not_exist_is_refused(attached: Attached) -> None:
    # GIVEN a table that is not attached, and a name that is no table
    # WHEN each is bootstrapped
    unattached = attached.cli("bootstrap", "--table", "elsewhere")
    missing = attached.cli("bootstrap", "--table", "no-such-table")

    # THEN both are refused as usage errors, saying why; nothing is exported
    assert (unattached.code, missing.code) == (Exit.USAGE, Exit.USAGE)
    assert "does not follow table elsewhere: attach it first" in unattached.err
    assert "no DynamoDB table 'no-such-table'" in missing.err
    assert exports_of(attached, "elsewhere") == []


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ("unstreamed", "table unstreamed has no stream: changelake needs one with NEW_AND_OLD_IMAGES"),
        ("keys-only", "table keys-only streams KEYS_ONLY, and changelake needs NEW_AND_OLD_IMAGES"),
    ],
)
def test_attach_refuses_a_table_without_a_stream_of_both_images_saying_how_to_fix_it(
    attached: Attached, table: str, said: str
) -> None:
    # GIVEN a table without a stream, and one whose stream has only the keys
    # WHEN either is attached without --enable-stream
    ran = attached.cli("attach", "--table", table)

    # THEN it is refused as a usage error naming what is missing and the option that fixes it
    assert ran.code == Exit.USAGE
    assert said in ran.err
    assert "--enable-stream" in ran.err


def test_attach_prints_the_deploy_with_the_stream_added_to_what_the_stack_follows(attached: Attached) -> None:
    # GIVEN a table with a stream of both images the stack does not follow yet
    followed = attached.stack.outputs["FollowedStreamArns"]
    stream = attached.dynamodb.describe_table(TableName="elsewhere")["Table"]["LatestStreamArn"]

    # WHEN it is attached without --deploy
    ran = attached.cli("attach", "--table", "elsewhere", "--json")

    # THEN the deploy command names the streams followed now plus this one; nothing changed yet
    assert ran.code == Exit.OK, ran.err
    result = json.loads(ran.out)
    assert result["plan"]["streams"] == [*followed.split(","), stream]
    assert result["deploy"].endswith(f"--parameter-overrides SourceStreamArns={followed},{stream}")
    assert "no point-in-time recovery" in ran.err


def test_attach_enables_the_stream_deploys_and_bootstraps(attached: Attached) -> None:
    # GIVEN a table with 4 items and no stream, no point-in-time recovery
    # WHEN it is attached with --enable-stream --deploy
    ran = attached.cli("attach", "--table", "unstreamed", "--enable-stream", "--deploy", "--json")

    # THEN its stream is on, the stack (redeployed) follows it besides the others, and its bootstrap
    # (a Scan) read every item
    assert ran.code == Exit.OK, ran.err
    stream = attached.dynamodb.describe_table(TableName="unstreamed")["Table"]["LatestStreamArn"]
    cloudformation = client("cloudformation", attached.endpoint)
    outputs = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    followed = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "FollowedStreamArns").split(",")
    assert len(followed) == len(ATTACHED) + 1
    assert stream in followed
    result = json.loads(ran.out)
    assert (result["method"], result["snapshot"]["result"]["items_read"]) == ("scan", 4)

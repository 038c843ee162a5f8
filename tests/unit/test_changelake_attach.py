"""The pure parts of `changelake attach`: which streams the new SourceStreamArns names, what it refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from changelake_cli.attach import plan_attach
from changelake_cli.bootstrap import SourceTable
from changelake_cli.errors import UsageError

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table"
ORDERS = SourceTable(
    name="orders",
    arn=f"{ARN}/orders",
    stream_arn=f"{ARN}/orders/stream/2026-11-20T08:00:00.000",
    view_type="NEW_AND_OLD_IMAGES",
    point_in_time_recovery=False,
)
OWN = f"{ARN}/changelake-changes/stream/2026-11-01T00:00:00.000"
OTHER = f"{ARN}/customers/stream/2026-11-02T00:00:00.000"


def test_the_first_attach_replaces_the_stacks_own_table() -> None:
    # GIVEN a stack that follows its own ChangeTable only
    # WHEN orders is attached
    plan = plan_attach(ORDERS, {"FollowedStreamArns": OWN}, own_table_stream=OWN)

    # THEN SourceStreamArns names orders alone, and the plan says the own table goes
    assert (plan.streams, plan.already_followed, plan.drops_own_table) == (
        [ORDERS.stream_arn],
        False,
        "ChangeTable",
    )
    assert plan.printable("changelake", "eu-west-1") == (
        "sam build && sam deploy --stack-name changelake --region eu-west-1 "
        f"--parameter-overrides SourceStreamArns={ORDERS.stream_arn}"
    )


def test_a_further_attach_keeps_what_is_followed_and_a_second_one_changes_nothing() -> None:
    # GIVEN a stack following customers
    outputs = {"FollowedStreamArns": OTHER}

    # WHEN orders is attached, and then attached again once followed
    plan = plan_attach(ORDERS, outputs, own_table_stream=None)
    again = plan_attach(ORDERS, {"FollowedStreamArns": plan.parameter}, own_table_stream=None)

    # THEN the value is both streams, in order, and the second attach has nothing to deploy
    assert plan.parameter == f"{OTHER},{ORDERS.stream_arn}"
    assert (again.streams, again.already_followed) == (plan.streams, True)


@pytest.mark.parametrize(
    ("table", "said"),
    [
        (replace(ORDERS, stream_arn=None, view_type=None), "has no stream"),
        (
            replace(ORDERS, view_type="NEW_IMAGE"),
            "streams NEW_IMAGE, and changelake needs NEW_AND_OLD_IMAGES",
        ),
    ],
)
def test_a_stream_that_cannot_be_followed_is_refused(table: SourceTable, said: str) -> None:
    # GIVEN a table without a stream, or with one of another view type
    # WHEN it is planned THEN the refusal says why and how to fix it
    with pytest.raises(UsageError, match=said) as refused:
        plan_attach(table, {"FollowedStreamArns": OTHER}, own_table_stream=None)
    assert "--enable-stream" in refused.value.message

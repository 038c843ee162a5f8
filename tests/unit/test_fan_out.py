"""When a day or an hour is built in pieces, and the names of the executions that build them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from changelake.exceptions import ConfigurationError
from changelake.fan_out import FanOut, execution_name
from changelake.integrations.step_functions import StateMachine
from changelake.settings import CompactionSettings, SnapshotSettings, fan_out

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:changelake-fan-out"
GIB = 1024**3


def test_below_the_threshold_one_invocation_builds_it_and_above_it_the_pieces_fit_their_size() -> None:
    # GIVEN a threshold of 8 GiB and pieces of 4 GiB
    rule = FanOut(ARN, 8 * GIB, 4 * GIB)

    # THEN a 7.9 GiB day is not handed off, 8 GiB is, in 2 pieces, and 8 GiB + 1 byte in 3
    assert rule.pieces_for(8 * GIB - 1) is None
    assert not rule.hands_off(8 * GIB - 1)
    assert rule.pieces_for(8 * GIB) == 2
    assert rule.pieces_for(8 * GIB + 1) == 3
    # AND a petabyte is capped at the most pieces a folder is built in
    assert rule.pieces_for(1024**5) == 1000


def test_a_fixed_count_of_pieces_and_a_stack_without_the_state_machine() -> None:
    assert FanOut(ARN, 1, 4 * GIB, pieces=4).pieces_for(10) == 4
    assert FanOut(ARN, 1, 4 * GIB, pieces=4).pieces_for(0) is None
    # a stack without the state machine never hands off, though the plan would split it
    assert not FanOut(None, 0, 1).hands_off(10**12)


def test_the_settings_give_each_function_its_own_thresholds_and_refuse_a_bad_count() -> None:
    # GIVEN the two batch functions' environments with the state machine's ARN
    environ = {"BUCKET_NAME": "lake-bucket", "FAN_OUT_STATE_MACHINE_ARN": ARN, "FAN_OUT_PIECES": ""}

    # THEN each has its own defaults, and an empty count means "from the bytes"
    assert fan_out(SnapshotSettings.from_environ(environ)) == FanOut(ARN, GIB, GIB // 2)
    assert fan_out(CompactionSettings.from_environ(environ)) == FanOut(ARN, GIB // 2, GIB // 4)
    # AND an empty ARN means no state machine
    assert (
        fan_out(SnapshotSettings.from_environ({**environ, "FAN_OUT_STATE_MACHINE_ARN": ""})).state_machine_arn
        is None
    )
    # AND a count of pieces past the most a folder takes fails the cold start, naming the variable
    with pytest.raises(ConfigurationError, match="FAN_OUT_PIECES"):
        SnapshotSettings.from_environ({**environ, "FAN_OUT_PIECES": "1001"})


@pytest.mark.parametrize(
    "table", ["orders", "a" * 255, "Ünïcode.table-name_1", "x.y.z"], ids=["short", "long", "unicode", "dots"]
)
def test_execution_names_are_valid_distinct_per_table_and_stable_per_run(table: str) -> None:
    now = datetime(2026, 12, 6, 2, 30, tzinfo=UTC)
    name = execution_name("compaction", table, "dt=2026-12-05/hour=23", now)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)
    assert name == execution_name("compaction", table, "dt=2026-12-05/hour=23", now)
    assert name != execution_name("compaction", table + "2", "dt=2026-12-05/hour=23", now)
    assert name != execution_name("compaction", table, "dt=2026-12-05/hour=22", now)
    assert name != execution_name("compaction", table, "dt=2026-12-05/hour=23", now.replace(day=7))


def test_a_function_without_a_state_machine_arn_has_no_state_machine() -> None:
    assert StateMachine.named(None) is None
    named = StateMachine.named(ARN)
    assert named is not None
    assert named.arn == ARN

"""SnapshotFunction's settings: docs/architecture.md's defaults, and errors that name the bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from changelake.exceptions import ConfigurationError
from changelake.settings import SnapshotSettings

BUCKET = "changelake-data-123456789012"


def test_snapshot_defaults() -> None:
    # GIVEN only BUCKET_NAME WHEN read THEN the prefixes and look-back are the documented defaults
    settings = SnapshotSettings.from_environ({"BUCKET_NAME": BUCKET})
    assert (settings.raw_prefix, settings.compacted_prefix, settings.snapshot_prefix) == (
        "raw",
        "compacted",
        "snapshot",
    )
    assert settings.lookback_days == 2
    assert settings.spill_dir == Path("/tmp")
    assert settings.memory_budget_bytes == 128 * 1024 * 1024


def test_snapshot_values_override_defaults() -> None:
    # GIVEN every variable set WHEN read THEN they are used, typed
    settings = SnapshotSettings.from_environ(
        {
            "BUCKET_NAME": BUCKET,
            "SNAPSHOT_PREFIX": "tables",
            "LOOKBACK_DAYS": "0",
            "SNAPSHOT_MEMORY_BUDGET_BYTES": "1048576",
            "SNAPSHOT_RESERVE_SECONDS": "60",
        }
    )
    assert (settings.snapshot_prefix, settings.lookback_days) == ("tables", 0)
    assert (settings.memory_budget_bytes, settings.reserve_seconds) == (1_048_576, 60.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BUCKET_NAME", "Not_A_Bucket"),
        ("SNAPSHOT_PREFIX", "../x"),
        ("SNAPSHOT_PREFIX", "snap/shot"),
        ("SNAPSHOT_PREFIX", ""),
        ("RAW_PREFIX", "."),
        ("LOOKBACK_DAYS", "-1"),
        ("SNAPSHOT_TARGET_BYTES", "1024"),
        ("SNAPSHOT_MEMORY_BUDGET_BYTES", "many"),
        ("SNAPSHOT_RESERVE_SECONDS", "900"),
    ],
)
def test_a_malformed_variable_is_named(name: str, value: str) -> None:
    # GIVEN one malformed variable WHEN read THEN the error names it
    with pytest.raises(ConfigurationError, match=f"{name}: "):
        SnapshotSettings.from_environ({"BUCKET_NAME": BUCKET, name: value})

"""Settings per function: docs/architecture.md's defaults, and errors that name the bad variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from changelake.exceptions import ConfigurationError
from changelake.settings import (
    AggregatorSettings,
    CompactionSettings,
    ConsumerSettings,
    RedriveSettings,
    SnapshotSettings,
)

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-ChangeQueue"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-ChangeDLQ"
BUCKET = "changelake-data-123456789012"

SettingsClass = (
    type[ConsumerSettings] | type[AggregatorSettings] | type[CompactionSettings] | type[RedriveSettings]
)

REQUIRED: dict[SettingsClass, dict[str, str]] = {
    ConsumerSettings: {"QUEUE_URL": QUEUE, "BUCKET_NAME": BUCKET},
    AggregatorSettings: {"BUCKET_NAME": BUCKET},
    CompactionSettings: {"BUCKET_NAME": BUCKET},
    RedriveSettings: {"QUEUE_URL": QUEUE, "DLQ_URL": DLQ, "BUCKET_NAME": BUCKET},
}


def test_consumer_defaults() -> None:
    # GIVEN only the required variables WHEN the consumer's settings are read
    settings = ConsumerSettings.from_environ(REQUIRED[ConsumerSettings])
    # THEN the values are given and the defaults are the documented ones
    assert settings.queue_url == QUEUE
    assert settings.bucket_name == BUCKET
    assert settings.max_message_bytes == 262_144
    assert settings.quarantine_prefix == "quarantine"
    assert settings.schema_dir is None


def test_aggregator_defaults() -> None:
    # GIVEN only BUCKET_NAME WHEN read THEN raw/ and quarantine/ are the defaults
    settings = AggregatorSettings.from_environ(REQUIRED[AggregatorSettings])
    assert settings.bucket_name == BUCKET
    assert settings.raw_prefix == "raw"
    assert settings.quarantine_prefix == "quarantine"


def test_compaction_defaults() -> None:
    # GIVEN only BUCKET_NAME WHEN read THEN raw/, compacted/ and two look-back days are the defaults
    settings = CompactionSettings.from_environ(REQUIRED[CompactionSettings])
    assert settings.raw_prefix == "raw"
    assert settings.compacted_prefix == "compacted"
    assert settings.lookback_days == 2


def test_redrive_defaults() -> None:
    # GIVEN the required variables WHEN read THEN both queues are kept and defaults apply
    settings = RedriveSettings.from_environ(REQUIRED[RedriveSettings])
    assert settings.queue_url == QUEUE
    assert settings.dlq_url == DLQ
    assert settings.max_message_bytes == 262_144
    assert settings.quarantine_prefix == "quarantine"


def test_redrive_refuses_more_redrives_than_the_claims_outlive() -> None:
    # GIVEN one redrive more than the default claims expiry (109 days) covers: (6 + 1) x 18 + 1 = 127
    environ = {**REQUIRED[RedriveSettings], "MAX_REDRIVES": "6"}

    # WHEN read THEN the cold start fails, naming MAX_REDRIVES and the expiry it would outlive
    expected = r"MAX_REDRIVES=6 .* 127 days, .* CLAIMS_EXPIRATION_DAYS=109"
    with pytest.raises(ConfigurationError, match=expected):
        RedriveSettings.from_environ(environ)


def test_redrive_takes_more_redrives_when_the_claims_live_longer() -> None:
    # GIVEN MAX_REDRIVES 6 and claims kept exactly the 127 days it needs
    environ = {**REQUIRED[RedriveSettings], "MAX_REDRIVES": "6", "CLAIMS_EXPIRATION_DAYS": "127"}

    # WHEN read THEN it is accepted; the default limit fits the default expiry exactly
    assert RedriveSettings.from_environ(environ).max_redrives == 6
    defaults = RedriveSettings.from_environ(REQUIRED[RedriveSettings])
    assert (defaults.max_redrives + 1) * defaults.message_lifetime_days + 1 == defaults.claims_expiration_days


def test_values_override_defaults() -> None:
    # GIVEN every optional variable set
    environ = {
        **REQUIRED[ConsumerSettings],
        "MAX_MESSAGE_BYTES": "65536",
        "QUARANTINE_PREFIX": "bad-records",
        "SCHEMA_DIR": "/opt/schemas",
        "UNRELATED": "ignored",
    }
    # WHEN read THEN they are used, typed
    settings = ConsumerSettings.from_environ(environ)
    assert settings.max_message_bytes == 65_536
    assert settings.quarantine_prefix == "bad-records"
    assert settings.schema_dir == Path("/opt/schemas")
    compaction = CompactionSettings.from_environ(
        {"BUCKET_NAME": BUCKET, "RAW_PREFIX": "r", "COMPACTED_PREFIX": "c", "LOOKBACK_DAYS": "0"}
    )
    assert (compaction.raw_prefix, compaction.compacted_prefix, compaction.lookback_days) == ("r", "c", 0)


@pytest.mark.parametrize("size", ["1024", "1048576"])
def test_message_size_bounds_are_inclusive(size: str) -> None:
    # GIVEN MAX_MESSAGE_BYTES at SQS's bounds WHEN read THEN it is accepted
    environ = {**REQUIRED[ConsumerSettings], "MAX_MESSAGE_BYTES": size}
    assert ConsumerSettings.from_environ(environ).max_message_bytes == int(size)


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the variables in the process environment
    monkeypatch.setenv("BUCKET_NAME", "from-the-env")
    monkeypatch.setenv("RAW_PREFIX", "rawer")
    # WHEN read without an explicit mapping THEN os.environ is used
    settings = AggregatorSettings.from_environ()
    assert (settings.bucket_name, settings.raw_prefix) == ("from-the-env", "rawer")


@pytest.mark.parametrize(
    ("cls", "missing"),
    [(cls, name) for cls, required in REQUIRED.items() for name in required],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_missing_required_variable_is_named(cls: SettingsClass, missing: str) -> None:
    # GIVEN every required variable but one
    environ = {name: value for name, value in REQUIRED[cls].items() if name != missing}
    # WHEN the settings are read THEN a ConfigurationError names the missing variable
    with pytest.raises(ConfigurationError, match=missing) as info:
        cls.from_environ(environ)
    # AND only that one (the others were fine)
    for other in REQUIRED[cls]:
        if other != missing:
            assert other not in str(info.value)


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (ConsumerSettings, "MAX_MESSAGE_BYTES", "abc"),
        (ConsumerSettings, "MAX_MESSAGE_BYTES", "1023"),
        (ConsumerSettings, "MAX_MESSAGE_BYTES", "1048577"),
        (ConsumerSettings, "MAX_MESSAGE_BYTES", ""),
        (ConsumerSettings, "MAX_MESSAGE_BYTES", "2.5"),
        (RedriveSettings, "MAX_MESSAGE_BYTES", "0"),
        (ConsumerSettings, "BUCKET_NAME", "My_Bucket"),
        (ConsumerSettings, "BUCKET_NAME", "ab"),
        (ConsumerSettings, "BUCKET_NAME", "s3://bucket"),
        (ConsumerSettings, "BUCKET_NAME", ""),
        (AggregatorSettings, "BUCKET_NAME", "bucket/with/slash"),
        (CompactionSettings, "BUCKET_NAME", "-bucket"),
        (ConsumerSettings, "QUEUE_URL", "not a url"),
        (ConsumerSettings, "QUEUE_URL", "changelake-ChangeQueue"),
        (ConsumerSettings, "QUEUE_URL", "ftp://queue"),
        (ConsumerSettings, "QUEUE_URL", ""),
        (RedriveSettings, "QUEUE_URL", "queue"),
        (RedriveSettings, "DLQ_URL", "dlq"),
        (ConsumerSettings, "QUARANTINE_PREFIX", "../x"),
        (ConsumerSettings, "QUARANTINE_PREFIX", "."),
        (ConsumerSettings, "QUARANTINE_PREFIX", ".."),
        (ConsumerSettings, "QUARANTINE_PREFIX", "a/b"),
        (ConsumerSettings, "QUARANTINE_PREFIX", ""),
        (AggregatorSettings, "RAW_PREFIX", "../x"),
        (AggregatorSettings, "RAW_PREFIX", "."),
        (AggregatorSettings, "QUARANTINE_PREFIX", "q u"),
        (CompactionSettings, "RAW_PREFIX", "raw/"),
        (CompactionSettings, "COMPACTED_PREFIX", "../x"),
        (CompactionSettings, "COMPACTED_PREFIX", "."),
        (CompactionSettings, "LOOKBACK_DAYS", "-1"),
        (CompactionSettings, "LOOKBACK_DAYS", "two"),
        (CompactionSettings, "LOOKBACK_DAYS", "367"),
    ],
)
def test_malformed_variable_is_named(cls: SettingsClass, name: str, value: str) -> None:
    # GIVEN all required variables and one malformed value
    environ = {**REQUIRED[cls], name: value}
    # WHEN the settings are read THEN a ConfigurationError names the variable
    with pytest.raises(ConfigurationError, match=f"{name}: ") as info:
        cls.from_environ(environ)
    assert cls.__name__ in str(info.value)


def test_several_problems_are_all_named() -> None:
    # GIVEN two bad variables and one missing
    environ = {"BUCKET_NAME": "Bad_Bucket", "MAX_MESSAGE_BYTES": "1"}
    # WHEN read THEN every one is named in the one error
    with pytest.raises(ConfigurationError) as info:
        ConsumerSettings.from_environ(environ)
    for name in ("BUCKET_NAME", "MAX_MESSAGE_BYTES", "QUEUE_URL"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("cls", "function"), [(CompactionSettings, "COMPACTION"), (SnapshotSettings, "SNAPSHOT")]
)
def test_each_batch_function_reads_its_build_settings_from_variables_named_after_it(
    cls: type[CompactionSettings] | type[SnapshotSettings], function: str
) -> None:
    # GIVEN the build variables of both batch functions, with different values
    environ = {"BUCKET_NAME": BUCKET}
    for name, value in (("COMPACTION", "6"), ("SNAPSHOT", "7")):
        environ |= {
            f"{name}_TARGET_BYTES": str(int(value) * 1024 * 1024),
            f"{name}_MEMORY_BUDGET_BYTES": str(int(value) * 1024 * 1024),
            f"{name}_SPILL_DIR": f"/scratch/{name.lower()}",
            f"{name}_RESERVE_SECONDS": value,
        }
    mine = 6 if function == "COMPACTION" else 7

    # WHEN one function's settings are read THEN it takes its own, and the defaults without them
    settings = cls.from_environ(environ)
    assert (settings.target_part_bytes, settings.memory_budget_bytes) == (mine * 1024 * 1024,) * 2
    assert (settings.spill_dir, settings.reserve_seconds) == (Path(f"/scratch/{function.lower()}"), mine)
    defaults = cls.from_environ({"BUCKET_NAME": BUCKET})
    assert (defaults.target_part_bytes, defaults.spill_dir, defaults.reserve_seconds) == (
        2**27,
        Path("/tmp"),
        240,
    )
    # AND a bad value is named by its variable
    with pytest.raises(ConfigurationError, match=f"{function}_TARGET_BYTES: "):
        cls.from_environ({"BUCKET_NAME": BUCKET, f"{function}_TARGET_BYTES": "1024"})

"""One settings model per function, read from the environment and validated at cold start.

A missing or malformed variable fails with a ``ConfigurationError`` naming the variable, before
the first record is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from changelake.exceptions import ConfigurationError
from changelake.fan_out import FanOut
from changelake.pieces import MAX_PIECES
from changelake.storage.limits import BuildLimits

_SEGMENT = r"^[A-Za-z0-9_.\-]{1,128}$"
_BUCKET = r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$"
_QUEUE_URL = r"^https?://\S+$"


def _not_dots_only(value: str) -> str:
    if set(value) == {"."}:
        raise ValueError("a prefix cannot be only dots")
    return value


Prefix = Annotated[str, Field(pattern=_SEGMENT), AfterValidator(_not_dots_only)]
QueueUrl = Annotated[str, Field(pattern=_QUEUE_URL)]
#: Compressed bytes of one output part (S3's multipart minimum is 5 MiB).
PartBytes = Annotated[int, Field(ge=5 * 1024 * 1024)]
#: Bytes of sorted entries a run holds in memory before it spills a sorted run to disk.
MemoryBudget = Annotated[int, Field(ge=1024 * 1024)]
#: Seconds of the Lambda deadline kept free: below it, the work still to do is handed on.
ReserveSeconds = Annotated[float, Field(ge=0, le=880)]
_MIB_128 = 128 * 1024 * 1024
_MIB = 1024**2
_GIB = 1024**3

#: SQS's own bounds on a message body.
MIN_MESSAGE_BYTES = 1024
MAX_MESSAGE_BYTES = 1_048_576


class _EnvironmentSettings(BaseModel):
    # Deferred: a handler validates one of these models; building the validators of the other
    # four at import would be paid by every cold start for nothing.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    bucket_name: str = Field(alias="BUCKET_NAME", pattern=_BUCKET)
    #: Item images and key values (customer data) may appear in logs only when this is true:
    #: a debugging switch (template parameter LogItemData), off by default.
    log_item_data: bool = Field(default=False, alias="LOG_ITEM_DATA")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Validate ``environ`` (default: ``os.environ``), naming every bad variable on failure."""
        source = os.environ if environ is None else environ
        try:
            return cls.model_validate(dict(source))
        except ValidationError as exc:
            problems = "; ".join(_describe(error["loc"], error["msg"]) for error in exc.errors())
            raise ConfigurationError(f"{cls.__name__} is invalid: {problems}") from exc


def _describe(location: tuple[int | str, ...], message: str) -> str:
    # A check across variables (a model validator) has no location: its message names them.
    where = ".".join(str(part) for part in location)
    return f"{where}: {message}" if where else message


class ConsumerSettings(_EnvironmentSettings):
    """StreamConsumerFunction."""

    queue_url: QueueUrl = Field(alias="QUEUE_URL")
    max_message_bytes: int = Field(
        default=262_144, alias="MAX_MESSAGE_BYTES", ge=MIN_MESSAGE_BYTES, le=MAX_MESSAGE_BYTES
    )
    quarantine_prefix: Prefix = Field(default="quarantine", alias="QUARANTINE_PREFIX")
    claims_prefix: Prefix = Field(default="claims", alias="CLAIMS_PREFIX")
    schema_dir: Path | None = Field(default=None, alias="SCHEMA_DIR")


class AggregatorSettings(_EnvironmentSettings):
    """AggregatorFunction."""

    raw_prefix: Prefix = Field(default="raw", alias="RAW_PREFIX")
    quarantine_prefix: Prefix = Field(default="quarantine", alias="QUARANTINE_PREFIX")


class _BatchSettings(_EnvironmentSettings):
    """What compaction and the snapshot both read: where raw/ and compacted/ lie, and how many
    days before yesterday the nightly run checks."""

    raw_prefix: Prefix = Field(default="raw", alias="RAW_PREFIX")
    compacted_prefix: Prefix = Field(default="compacted", alias="COMPACTED_PREFIX")
    lookback_days: int = Field(default=2, alias="LOOKBACK_DAYS", ge=0, le=366)
    #: The fan-out state machine (``changelake.fan_out``); empty: every day and hour in one invocation.
    fan_out_state_machine_arn: str | None = Field(default=None, alias="FAN_OUT_STATE_MACHINE_ARN")
    #: A fixed count of pieces for whatever is handed off (local runs); empty: from the input bytes.
    fan_out_pieces: int | None = Field(default=None, alias="FAN_OUT_PIECES", ge=1, le=MAX_PIECES)

    # How the function builds; the variables carry its name (``_named_after``).
    target_part_bytes: PartBytes = _MIB_128
    memory_budget_bytes: MemoryBudget = _MIB_128
    spill_dir: Path = Path("/tmp")  # noqa: S108 - Lambda's scratch
    reserve_seconds: ReserveSeconds = 240.0

    @field_validator("fan_out_state_machine_arn", "fan_out_pieces", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value


#: The variable of each of a batch function's build settings, after the function's name.
_BUILD_VARIABLES = {
    "target_part_bytes": "TARGET_BYTES",
    "memory_budget_bytes": "MEMORY_BUDGET_BYTES",
    "spill_dir": "SPILL_DIR",
    "reserve_seconds": "RESERVE_SECONDS",
}


def _named_after(function: str) -> ConfigDict:
    """A batch function's settings whose build variables carry its name (``COMPACTION_TARGET_BYTES``,
    ``SNAPSHOT_SPILL_DIR``, ...); every other field names its variable itself."""
    return ConfigDict(alias_generator=lambda field: f"{function}_{_BUILD_VARIABLES[field]}")


class CompactionSettings(_BatchSettings):
    """CompactionFunction."""

    model_config = _named_after("COMPACTION")

    #: Compressed bytes of an hour's raw/ objects from which it is compacted in slices, and per slice.
    #: Change lines compress about 7.5x (gzip level 6), so 512 MiB is about 3.8 GB of changes, a
    #: quarter of the 13-15 GB one invocation compacts in its 15 minutes at 1,024 MB (0.58 vCPU;
    #: docs/compaction.md): far from the timeout on slower cores; a slice of 256 MiB takes a few minutes.
    fan_out_min_bytes: int = Field(default=512 * _MIB, alias="FAN_OUT_MIN_BYTES", ge=0)
    fan_out_piece_bytes: int = Field(default=256 * _MIB, alias="FAN_OUT_PIECE_BYTES", ge=1)


class SnapshotSettings(_BatchSettings):
    """SnapshotFunction."""

    model_config = _named_after("SNAPSHOT")

    snapshot_prefix: Prefix = Field(default="snapshot", alias="SNAPSHOT_PREFIX")
    #: Where the Parquet of the tables with a JSON Schema (in ``SCHEMA_DIR``) goes, beside snapshot/.
    parquet_prefix: Prefix = Field(default="snapshot-parquet", alias="PARQUET_SNAPSHOT_PREFIX")
    schema_dir: Path | None = Field(default=None, alias="SCHEMA_DIR")
    #: Compressed bytes of a day's input (the previous day's snapshot and the day's changes) from
    #: which it is built in buckets, and per bucket. Lines compress about 7.5x, so 1 GiB is about 8 GB
    #: of table, under half the 20 GB one invocation snapshots in its 15 minutes (docs/snapshot.md,
    #: "Scale": 31.6 MB per CPU second); a bucket of 512 MiB takes about two minutes.
    fan_out_min_bytes: int = Field(default=1 * _GIB, alias="FAN_OUT_MIN_BYTES", ge=0)
    fan_out_piece_bytes: int = Field(default=512 * _MIB, alias="FAN_OUT_PIECE_BYTES", ge=1)


def build_limits(settings: CompactionSettings | SnapshotSettings) -> BuildLimits:
    """How a batch function's builders write parts, sort and spill."""
    return BuildLimits(settings.target_part_bytes, settings.memory_budget_bytes, settings.spill_dir)


def fan_out(settings: CompactionSettings | SnapshotSettings) -> FanOut:
    """When a batch function's days or hours are built in pieces."""
    return FanOut(
        settings.fan_out_state_machine_arn,
        settings.fan_out_min_bytes,
        settings.fan_out_piece_bytes,
        settings.fan_out_pieces,
    )


class RedriveSettings(_EnvironmentSettings):
    """DlqRedriveFunction."""

    queue_url: QueueUrl = Field(alias="QUEUE_URL")
    dlq_url: QueueUrl = Field(alias="DLQ_URL")
    stream_failure_queue_url: QueueUrl | None = Field(default=None, alias="STREAM_FAILURE_QUEUE_URL")
    #: Lambda's on-failure destination of the asynchronous functions (their failed invocations).
    async_failure_queue_url: QueueUrl | None = Field(default=None, alias="ASYNC_FAILURE_QUEUE_URL")
    max_message_bytes: int = Field(
        default=262_144, alias="MAX_MESSAGE_BYTES", ge=MIN_MESSAGE_BYTES, le=MAX_MESSAGE_BYTES
    )
    quarantine_prefix: Prefix = Field(default="quarantine", alias="QUARANTINE_PREFIX")
    claims_prefix: Prefix = Field(default="claims", alias="CLAIMS_PREFIX")
    lost_prefix: Prefix = Field(default="lost", alias="LOST_PREFIX")
    max_redrives: int = Field(default=5, alias="MAX_REDRIVES", ge=1)
    #: How long the bucket keeps a claim check: the template's expire-claims lifecycle rule.
    claims_expiration_days: int = Field(default=109, alias="CLAIMS_EXPIRATION_DAYS", ge=1)
    #: The longest one message lives: ChangeQueue retention + ChangeDLQ retention (4 + 14 days).
    message_lifetime_days: int = Field(default=18, alias="MESSAGE_LIFETIME_DAYS", ge=1)
    #: The consumer's schemas, so replayed stream records are checked exactly as the consumer does.
    schema_dir: Path | None = Field(default=None, alias="SCHEMA_DIR")

    @model_validator(mode="after")
    def _claims_outlive_every_redriven_copy(self) -> Self:
        # Each redrive sends a new message pointing at the same claim check; if the claim expired
        # first, the last copies would point at nothing and their changes would be lost.
        needed = claims_reference_days(self.max_redrives, self.message_lifetime_days)
        if needed > self.claims_expiration_days:
            raise ValueError(
                f"MAX_REDRIVES={self.max_redrives} lets a message point at its claim check for "
                f"({self.max_redrives} + 1) x {self.message_lifetime_days} + 1 = {needed} days, but "
                f"claims/ expires after CLAIMS_EXPIRATION_DAYS={self.claims_expiration_days}: lower "
                "MAX_REDRIVES or raise the expire-claims rule (and CLAIMS_EXPIRATION_DAYS) with it"
            )
        return self


def claims_reference_days(max_redrives: int, message_lifetime_days: int) -> int:
    """Days a claim check can still be referenced: the first message and each redriven copy live
    at most ``message_lifetime_days``, and one more day covers the last read of the last copy."""
    return (max_redrives + 1) * message_lifetime_days + 1

"""Bootstrap: a table whose stream was enabled after it had items starts from a DynamoDB export.

The export is a full export to S3 (``ExportTableToPointInTime``, ``DYNAMODB_JSON``) in the layout
AWS documents::

    <prefix>/AWSDynamoDB/<export id>/manifest-summary.json   exportArn, tableArn, exportTime,
                                                             itemCount, outputFormat, exportType, ...
    <prefix>/AWSDynamoDB/<export id>/manifest-files.json     one JSON object per line per data file:
                                                             itemCount, md5Checksum, etag, dataFileS3Key
    <prefix>/AWSDynamoDB/<export id>/data/<name>.json.gz     gzip lines of {"Item": {<DynamoDB JSON>}};
                                                             an empty partition gives an empty file

The items are converted exactly as stream images are (``dynamodb_json.item_text``), sorted by key
with the external sorter, and kept under ``<snapshot>/<table>/_bootstrap/`` as the base of the
table's first day: the export's UTC day (every change of that day is applied on top; images are
whole items, so a change the export already holds changes nothing). The export does not name the
table's key attributes, so they are read with ``DescribeTable``.

Refused, before anything is published, with an ``InvalidEventError`` naming the object: an export
outside the DataBucket's ``exports/``, a summary or file list that is missing or unreadable,
another format or export type, an export of another table, a data file that is not gzip or holds
a line that is not an item, item counts that do not match the manifests, or two items with one
key. A gap (the lake's first change of the table is later than the export time, so changes made
in between may be missing) is reported, not refused.

Once the bootstrap is published, the days before the export's day are retired
(``SnapshotBuilder.retire_before``): a table snapshotted from its stream alone before it was
bootstrapped loses those incomplete days, which the export's day now starts. A run that dies
part way leaves the rest to the next run of any kind (every chain of a bootstrapped table retires
what it finds).

Delivery guarantee: the bootstrap is published whole (the same protocol as a day) or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from changelake.exceptions import (
    AccessDeniedError,
    DeliveryError,
    InvalidEventError,
    ObjectNotFoundError,
    RecordRejected,
    UnreadableInputError,
)
from changelake.formats.change_line import parse_change_line
from changelake.formats.dynamodb_json import item_text
from changelake.formats.layout import part_name
from changelake.integrations.base import AwsAdapter
from changelake.integrations.s3 import ObjectInfo
from changelake.publication import Generation, Manifest, OpenUploads, Written, publish
from changelake.snapshot.builder import SnapshotBuilder
from changelake.snapshot.events import BootstrapEvent
from changelake.snapshot.lines import Entry, keys_of_text, snapshot_line
from changelake.snapshot.manifest import (
    BootstrapManifest,
    FileRef,
    Gap,
    OutputPart,
    bootstrap_generation,
)
from changelake.storage.io import PartsWriter, Prefetcher, iter_gzip_lines, split_lines
from changelake.storage.sort import DedupeSorter

FIELD = "bootstrap"
#: Where in the DataBucket exports are read from (fixed: the function's IAM policy names it); export
#: with ``--s3-prefix exports/<table>``.
EXPORT_PREFIX = "exports"
#: DescribeTable's code for a table that does not exist (mapped by code, never by message).
_TABLE_MISSING_CODES = frozenset({"ResourceNotFoundException"})


class ExportSummary(BaseModel):
    """The fields of ``manifest-summary.json`` the bootstrap relies on."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    export_arn: str = Field(alias="exportArn", min_length=1)
    table_arn: str = Field(alias="tableArn", min_length=1)
    export_time: AwareDatetime = Field(alias="exportTime")
    item_count: int = Field(alias="itemCount", ge=0)
    output_format: str = Field(alias="outputFormat")
    export_type: str = Field(default="FULL_EXPORT", alias="exportType")

    @property
    def table_name(self) -> str:
        """The table name in ``arn:aws:dynamodb:<region>:<account>:table/<name>``."""
        return self.table_arn.rpartition(":table/")[2].split("/")[0]

    @property
    def export_time_text(self) -> str:
        return self.export_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ExportFile(BaseModel):
    """One line of ``manifest-files.json``."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    item_count: int = Field(alias="itemCount", ge=0)
    data_file_key: str = Field(alias="dataFileS3Key", min_length=1)


@dataclass(slots=True)
class BootstrapResult:
    """What a bootstrap did. ``status``: bootstrapped, completed (rolled forward) or unchanged."""

    table: str
    status: str
    export_arn: str
    export_time: str
    first_day: str
    items_read: int
    files: int
    gap: Gap
    writes: int = 0
    days_retired: int = 0  # snapshot days before the export's day taken away
    seconds: float = 0.0


class TableKeys(AwsAdapter):
    """A table's key attribute names (``DescribeTable``), partition key first."""

    service = "dynamodb"

    def __call__(self, table: str) -> tuple[str, ...]:
        try:
            response = self._request("describe_table", f"dynamodb:table/{table}", TableName=table)
        except DeliveryError as exc:
            if exc.code in _TABLE_MISSING_CODES:
                raise InvalidEventError(
                    "table", f"{table} does not exist (its key schema is needed to read the export)"
                ) from exc
            raise
        schema = sorted(response["Table"]["KeySchema"], key=lambda key: key["KeyType"] != "HASH")
        return tuple(str(key["AttributeName"]) for key in schema)


def _refused(message: str) -> InvalidEventError:
    return InvalidEventError(FIELD, message)


class Bootstrapper:
    """Reads a DynamoDB export into the base of a table's snapshots (see the module)."""

    def __init__(self, builder: SnapshotBuilder, *, table_keys: Any = None) -> None:
        """``table_keys(table) -> key attribute names``; by default ``DescribeTable``."""
        self.builder = builder
        self.store = builder.store
        self.table_keys = table_keys or TableKeys()

    def _url(self, key: str) -> str:
        return f"s3://{self.store.bucket}/{key}"

    def _read_export_object(self, key: str) -> bytes:
        try:
            return self.store.get(key)
        except ObjectNotFoundError:
            raise _refused(f"{self._url(key)} does not exist") from None
        except AccessDeniedError:
            raise _refused(f"{self._url(key)} cannot be read (access denied)") from None

    def summary(self, event: BootstrapEvent) -> ExportSummary:
        """The export's summary, checked: readable, a full DynamoDB JSON export of ``event.table``."""
        if event.bucket != self.store.bucket or not event.export_folder.startswith(f"{EXPORT_PREFIX}/"):
            raise _refused(
                f"the export must be under s3://{self.store.bucket}/{EXPORT_PREFIX}/ (the DataBucket's "
                "exports folder, the one place the function may read exports)"
            )
        url = self._url(event.summary_key)
        try:
            summary = ExportSummary.model_validate_json(self._read_export_object(event.summary_key))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "document"
            raise _refused(f"{url} is not an export summary ({where}: {error['msg']})") from None
        if summary.output_format != "DYNAMODB_JSON":
            raise _refused(f"{url}: outputFormat is {summary.output_format!r}; only DYNAMODB_JSON is read")
        if summary.export_type != "FULL_EXPORT":
            raise _refused(f"{url}: exportType is {summary.export_type!r}; only FULL_EXPORT is read")
        if summary.table_name != event.table:
            raise _refused(f"{url}: the export is of table {summary.table_name!r}, not {event.table!r}")
        return summary

    def export_files(self, event: BootstrapEvent) -> list[tuple[ExportFile, ObjectInfo]]:
        """The data files ``manifest-files.json`` lists, resolved in the export's folder, with their sizes.

        ``dataFileS3Key`` includes the prefix the export was written to; the file's place below
        ``AWSDynamoDB/<export id>/`` is kept, so an export copied elsewhere reads the same.
        """
        key = f"{event.export_folder}/manifest-files.json"
        marker = f"AWSDynamoDB/{event.export_id}/"
        files = []
        for number, line in enumerate(self._read_export_object(key).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = ExportFile.model_validate_json(line)
            except ValidationError:
                raise _refused(f"{self._url(key)} line {number} does not describe a data file") from None
            tail = entry.data_file_key.partition(marker)[2]
            if not tail or ".." in tail.split("/"):
                raise _refused(
                    f"{self._url(key)} line {number}: {entry.data_file_key!r} is not in the export"
                )
            data_key = f"{event.export_folder}/{tail}"
            try:
                files.append((entry, self.store.head(data_key)))
            except ObjectNotFoundError:
                raise _refused(
                    f"{self._url(data_key)} (listed in manifest-files.json) does not exist"
                ) from None
        return files

    def run(self, event: BootstrapEvent) -> BootstrapResult:
        """Read the export and publish it as the table's bootstrap (idempotent for the same export)."""
        started = time.monotonic()
        summary = self.summary(event)
        files = self.export_files(event)
        listed = sum(entry.item_count for entry, _ in files)
        if listed != summary.item_count:
            raise _refused(
                f"{self._url(event.summary_key)}: itemCount {summary.item_count}, but the data files "
                f"list {listed} items"
            )
        key_attributes = self.table_keys(event.table)
        infos = [info for _, info in files]
        pending = BootstrapManifest(
            table=event.table,
            generation=bootstrap_generation(event.table, summary.export_arn, key_attributes, infos),
            export_summary=event.bootstrap,
            export_arn=summary.export_arn,
            export_time=summary.export_time_text,
            key_attributes=key_attributes,
            files=tuple(FileRef.of(info) for info in infos),
            items=summary.item_count,
            gap=self.gap(event.table, summary.export_time),
            bootstrapped_at=self.builder.clock().isoformat().replace("+00:00", "Z"),
        )
        result = BootstrapResult(
            table=event.table,
            status="bootstrapped",
            export_arn=summary.export_arn,
            export_time=summary.export_time_text,
            first_day=pending.day.isoformat(),
            items_read=summary.item_count,
            files=len(files),
            gap=pending.gap,
        )
        outcome = publish(_BootstrapGeneration(self, pending, files))
        if outcome.status != "built":
            result.status = "completed" if outcome.status == "completed" else "unchanged"
        result.writes = outcome.writes
        result.days_retired = self.builder.retire_before(event.table, pending.day)
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def write_items(
        self, pending: BootstrapManifest, files: list[tuple[ExportFile, ObjectInfo]], uploads: OpenUploads
    ) -> Written[None]:
        """The export's items as open parts, sorted by key, and ``pending`` (a manifest still without
        outputs) naming them."""
        folder = self.builder.bootstrap_publication(pending.table).folder
        writer = PartsWriter(
            self.store,
            lambda index: folder + part_name(pending.generation, index),
            target_bytes=self.builder.limits.target_part_bytes,
            metadata={"generation": pending.generation},
        )
        uploads.on_abort(writer.abort)
        with DedupeSorter(self.builder.limits.spill_dir, self.builder.limits.memory_budget_bytes) as sorter:
            for entry in self._items(pending.table, files, pending.key_attributes):
                sorter.add(entry)
            for entry in sorter.sorted_unique():
                writer.write(entry[3])
            _check_unique(sorter, pending.export_summary)
            parts = writer.close()
        manifest = pending.model_copy(update={"outputs": tuple(OutputPart.of(part) for part in parts)})
        return Written(manifest.body(), None)

    def _items(
        self, table: str, files: list[tuple[ExportFile, ObjectInfo]], key_attributes: tuple[str, ...]
    ) -> Iterator[Entry]:
        """The sorter entry of every item of the export's data files; counts checked per file."""
        keys = [info.key for _, info in files]
        try:
            with Prefetcher(self.store, keys) as prefetcher:
                for (entry, info), chunks in zip(files, prefetcher.chunks(), strict=True):
                    url = self._url(info.key)
                    count = 0
                    for number, line in enumerate(split_lines(chunks), start=1):
                        try:
                            yield _item_entry(table, line, key_attributes)
                        except RecordRejected as exc:
                            raise _refused(f"{url} line {number}: {exc.reason}") from None
                        count += 1
                    if count != entry.item_count:
                        raise _refused(
                            f"{url} holds {count} items; manifest-files.json says {entry.item_count}"
                        )
        except UnreadableInputError as exc:  # bad gzip, named by the reader
            raise _refused(str(exc)) from None

    def gap(self, table: str, export_time: datetime) -> Gap:
        """The lake's first change of ``table`` against the export time."""
        first = self.first_change(table)
        export_text = export_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        missing = first is None or datetime.fromisoformat(first) > export_time
        return Gap(export_time=export_text, first_change=first, missing_possible=missing)

    def first_change(self, table: str) -> str | None:
        """The ``event_time`` of the table's earliest change in raw/ (None if it has none).

        Only the first hour with files is read, and of each file its first line: the aggregator
        writes each file in event-time order.
        """
        days = self.builder.raw_days(table)
        if not days:
            return None
        inputs = self.builder.raw_inputs(table, days[0])
        if not inputs:
            return None
        first_hour = inputs[0].key.rsplit("/", 1)[0]
        earliest: str | None = None
        for item in inputs:
            if item.key.rsplit("/", 1)[0] != first_hour:
                break
            body = self.store.open(item.key)
            try:
                line = next(iter_gzip_lines(body, resource=self._url(item.key)), None)
            finally:
                body.close()
            try:
                event_time = parse_change_line(line).event_time if line is not None else None
            except RecordRejected:
                event_time = None  # not for the gap to judge; the day's build reports it
            if event_time is not None and (earliest is None or event_time < earliest):
                earliest = event_time
        return earliest


def _check_unique(sorter: DedupeSorter, url: str) -> None:
    if sorter.duplicates:
        raise _refused(f"{url}: {sorter.duplicates} item(s) share their key with another item")


def _item_entry(table: str, line: bytes, key_attributes: tuple[str, ...]) -> Entry:
    """The sorter entry (key, 0, "", snapshot line) of one ``{"Item": {...}}`` line of an export."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise RecordRejected("not JSON") from None
    item = document.get("Item") if type(document) is dict else None
    if type(item) is not dict:
        raise RecordRejected('not an {"Item": {...}} line')
    missing = [name for name in key_attributes if name not in item]
    if missing:
        raise RecordRejected(f"the item has no key attribute {missing[0]!r}")
    key = keys_of_text(item_text("keys", {name: item[name] for name in key_attributes}).encode())
    return (key, 0, "", snapshot_line(table, key, item_text("Item", item).encode()))


class _BootstrapGeneration(Generation[str, None]):
    """A table's bootstrap export as a generation of its ``_bootstrap/`` folder."""

    def __init__(
        self, bootstrap: Bootstrapper, pending: BootstrapManifest, files: list[tuple[ExportFile, ObjectInfo]]
    ) -> None:
        self.bootstrap = bootstrap
        self.pending = pending
        self.files = files
        self.publication = bootstrap.builder.bootstrap_publication(pending.table)

    def plan(self, current: Manifest | None) -> str:
        return self.pending.generation

    def is_current(self, plan: str, current: Manifest) -> bool:
        typed = BootstrapManifest.from_body(current.body)
        return typed is not None and typed.generation == plan

    def write(self, plan: str, uploads: OpenUploads) -> Written[None]:
        return self.bootstrap.write_items(self.pending, self.files, uploads)

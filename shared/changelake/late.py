"""Late-data markers: how the nightly runs find hours of raw/ that changed after they were built.

raw/ can change for an hour that was already compacted (and a day whose snapshot was already
built), for example when a redrive brings changes back days later, past the look-back window.
Listing all of raw/ every night would find them, at a cost that grows with the lake; instead the
aggregator leaves a marker for each consumer, and each consumer's run lists only its markers.

The contract (shared by compaction and the snapshot layer):

- When the aggregator stores a raw/ object whose hour's UTC day is before its own processing
  day (its clock, injected), it writes an empty marker object for each consumer, after the raw
  object and before acknowledging the message::

      late/compaction/<table>/dt=YYYY-MM-DD/hour=HH/<raw file name>
      late/snapshot/<table>/dt=YYYY-MM-DD/hour=HH/<raw file name>

  After the raw object, so that a marker a run has listed always names a raw file the run's
  later input listing sees. One marker per raw file, so a marker written after a run listed the
  markers is never deleted by that run. If a marker cannot be written the message is reported
  failed and redelivered (its raw object is rewritten under the same key, then the marker).
- A consumer's scheduled run plans yesterday, ``LOOKBACK_DAYS`` before it and every hour (or
  day) its markers name, however old, and after that partition (day) is published deletes
  exactly the marker keys it listed before it read its inputs. A failed partition keeps its
  marker, so the next run retries it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from changelake.clock import Clock, utc_now
from changelake.exceptions import UnsafeNameError
from changelake.formats.layout import Partition, parse_partition_prefix, partition_key
from changelake.integrations.base import ObjectStore

#: The bucket's top folder of markers (fixed: the consumers' IAM policies name it).
LATE_PREFIX = "late"
MARKER_CONTENT_TYPE = "application/octet-stream"

Consumer = Literal["compaction", "snapshot"]
#: Every consumer gets its own marker of each late raw file.
CONSUMERS: tuple[Consumer, ...] = get_args(Consumer)


@dataclass(frozen=True, order=True, slots=True)
class Marker:
    """One marker: ``consumer`` must rebuild ``table``'s hour ``hour`` of ``dt``; ``key`` is its object."""

    consumer: Consumer
    table: str
    dt: date
    hour: int
    key: str

    @property
    def partition(self) -> Partition:
        return Partition(self.table, self.dt, self.hour)


class LateMarkers:
    """The markers under ``late/`` of one bucket.

    Delivery guarantee of ``mark``: it returns only when every consumer's marker is stored; any
    failure raises a ``DeliveryError`` (the caller must then not acknowledge the raw data).
    """

    def __init__(self, store: ObjectStore, *, prefix: str = LATE_PREFIX, clock: Clock = utc_now) -> None:
        self.store = store
        self.prefix = prefix
        self.clock = clock

    def _folder(self, consumer: Consumer) -> str:
        return f"{self.prefix}/{consumer}"

    def mark(self, partition: Partition, raw_name: str) -> None:
        """Tell every consumer that ``partition`` of raw/ gained the file ``raw_name``."""
        if not raw_name or "/" in raw_name:
            raise ValueError(f"not a raw file name: {raw_name!r}")
        for consumer in CONSUMERS:
            key = partition_key(self._folder(consumer), partition, raw_name)
            self.store.put(key, b"", content_type=MARKER_CONTENT_TYPE)

    def keep_for_retry(self, consumer: Consumer, partition: Partition) -> None:
        """A marker for ``partition`` that ``consumer`` failed to build, so its later runs retry it
        however old it is, until one succeeds and clears it. The name is unique (``failed-<UTC
        time>-<random>``), so a run that listed the markers before it was written never deletes it."""
        name = f"failed-{self.clock():%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:12]}"
        self.store.put(
            partition_key(self._folder(consumer), partition, name), b"", content_type=MARKER_CONTENT_TYPE
        )

    def pending(self, consumer: Consumer) -> list[Marker]:
        """Every marker left for ``consumer``, in key order (one listing per 1,000 markers)."""
        folder = self._folder(consumer)
        markers = []
        for item in self.store.list_objects(f"{folder}/"):
            hour_folder = item.key.rsplit("/", 1)[0] + "/"
            try:
                partition = parse_partition_prefix(folder, hour_folder)
            except UnsafeNameError:
                continue  # never written by the aggregator: not a marker
            markers.append(Marker(consumer, partition.table, partition.dt, partition.hour, item.key))
        return markers

    def clear(self, markers: Iterable[Marker]) -> None:
        """Delete exactly these markers (those listed before the inputs they stand for were read)."""
        for marker in markers:
            self.store.delete(marker.key)

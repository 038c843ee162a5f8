"""Derived formats of a snapshot day: copies of a published JSON day in another shape.

Parquet is one today (``changelake.snapshot.parquet.ParquetSnapshots``); an open table format or
a database load would be another. Each is one implementation of ``DerivedFormat``, and the
builder takes a list of them: after a JSON day is published (or found current), each format
brings its own copy of that day up to date, and a failure is that format's alone (the JSON day
stays published). ``FORMATS`` registers each format's name with its metric, so the run summary
reports every format changelake has, configured or not.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from changelake.publication import Publication
from changelake.snapshot.manifest import DayManifest

#: Every derived format, by name (``DerivedFormat.name``, the summary's ``<name>_days_built``), and
#: the metric counting its days built.
FORMATS: dict[str, str] = {"parquet": "ParquetDaysBuilt"}


class DerivedDay(Protocol):
    """What bringing one derived day up to date did: ``built``, ``completed`` or ``unchanged``."""

    @property
    def status(self) -> str: ...


class DerivedFormat(Protocol):
    """A copy of every published JSON day of a table in another shape, under its own prefix."""

    #: Its key in ``FORMATS``; it names the format in the summary and in its failures.
    name: str
    #: Its layer's prefix in the bucket (``<prefix>/<table>/dt=YYYY-MM-DD/``).
    prefix: str

    def refresh(self, day: DayManifest) -> DerivedDay | None:
        """Bring the copy of the published JSON ``day`` up to date; None if the format does not
        apply to its table (Parquet: a table without a schema)."""
        ...

    def publication(self, table: str, day: date) -> Publication:
        """The folder of ``table``'s copy of ``day`` (retired with the JSON day)."""
        ...

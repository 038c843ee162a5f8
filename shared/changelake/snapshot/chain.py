"""The chain of days of a table: every day from its origin to a target day brought up to date, in
order, each on the day before it as published (``changelake.snapshot.builder`` describes the layer)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from changelake.exceptions import DeliveryError, UnreadableInputError
from changelake.snapshot.day import DayBuilder, DayResult, Split
from changelake.snapshot.derived import DerivedFormat
from changelake.snapshot.layout import Base, Origin, Recheck, SnapshotLayout, day_range
from changelake.snapshot.manifest import DayManifest


@dataclass(slots=True)
class ChainResult:
    """What bringing a table up to a target day did, day by day, oldest first."""

    table: str
    target: date
    days: list[DayResult] = field(default_factory=list)
    origin: date | None = None
    retired: int = 0  # days before the origin (a later bootstrap) taken away
    failed: str | None = None  # the error of the first day that failed (later days were not built)
    stopped: bool = False  # out of time before the target
    #: Days a derived format could not copy (their JSON day is published; later days go on).
    derived_failed: list[tuple[date, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed is None and not self.stopped and not self.derived_failed

    @property
    def split(self) -> DayResult | None:
        """The day the chain stopped at to be built in buckets, if it did."""
        last = self.days[-1] if self.days else None
        return last if last is not None and last.status == "split" else None

    @property
    def target_manifest(self) -> DayManifest | None:
        last = self.days[-1] if self.days else None
        return last.manifest if last is not None and last.day == self.target else None


#: Times a chain is checked again because concurrent runs kept replacing its days under this one.
MAX_CHAIN_ATTEMPTS = 4


class DayChain:
    """Brings a table's days up to a target day, oldest first (``bring_up_to_date``)."""

    def __init__(
        self, layout: SnapshotLayout, days: DayBuilder, derived: Sequence[DerivedFormat] = ()
    ) -> None:
        self.layout = layout
        self.days = days
        self.derived = tuple(derived)

    def bring_up_to_date(
        self,
        table: str,
        target: date,
        *,
        check_from: date | None = None,
        may_build: Callable[[], bool] = lambda: True,
        split: Split | None = None,
    ) -> ChainResult:
        """Make every day of ``table`` from its origin to ``target`` exist and be up to date.

        Days from ``check_from`` on (all days if None) are checked against their inputs; earlier
        days are trusted when they exist (late data in them is announced by late markers, which
        move ``check_from``). A missing day is built wherever it is, and every day after a built
        one is checked. ``may_build()`` is asked before each build; when it says no, the chain
        stops (``stopped``). A day that fails stops the chain (``failed``): later days build on it.
        ``split`` (``DayBuilder.refresh_day``): the first day it splits stops the chain (``stopped``,
        and ``split`` names the day: it is to be built in buckets, and the later days after it).
        """
        result = ChainResult(table, target)
        check = check_from
        for _ in range(MAX_CHAIN_ATTEMPTS):
            recheck = self._chain(result, check, may_build, split)
            if recheck is None:
                return result
            check = _recheck_from(check, recheck)
        result.failed = f"{table}: concurrent runs kept replacing its days; left to the next run"
        return result

    def _chain(
        self,
        result: ChainResult,
        check_from: date | None,
        may_build: Callable[[], bool],
        split: Split | None,
    ) -> Recheck | None:
        """Bring the days up to date, oldest first; a ``Recheck`` when a base moved or was lost."""
        start = self._start(result)
        if isinstance(start, Recheck):
            return start
        if start is None or result.target < start[0].day:
            return None
        origin, built = start
        result.origin = origin.day
        checking = False  # once set (the window starts, a day is missing or rebuilt), every later day
        previous: DayResult | None = None
        for day in day_range(origin.day, result.target):
            checking = checking or check_from is None or day >= check_from or day not in built
            # The origin day is always checked: a new bootstrap changes its base.
            if not checking and day != origin.day:
                previous = None
                continue
            outcome = self._check_day(result, origin, day, previous, (may_build, split))
            if isinstance(outcome, Recheck) or outcome is None:
                return outcome
            checking = checking or outcome.status == "built"
            previous = outcome
        return None

    def _check_day(
        self,
        result: ChainResult,
        origin: Origin,
        day: date,
        previous: DayResult | None,
        allowed: tuple[Callable[[], bool], Split | None],
    ) -> DayResult | Recheck | None:
        """Bring ``day`` up to date on the day before it (``previous``, as this run left it, or read)
        and derive its copies; None when the chain stops there (``failed`` or ``stopped`` set)."""
        table = result.table
        may_build, split = allowed
        try:
            before = day - timedelta(days=1)
            base = origin.base if day == origin.day else self.base_of(table, before, previous)
            if isinstance(base, Recheck):
                return base
            outcome = self.days.refresh_day(table, day, base, may_build=may_build, split=split)
        except (UnreadableInputError, DeliveryError) as exc:
            result.failed = f"{table}/dt={day.isoformat()}: {exc}"
            return None
        if outcome.status == "moved":
            return Recheck(day - timedelta(days=1))
        derived = self.derive(result, outcome, may_build)
        _record(result, outcome)
        # Out of time before the day's build, or before its derived copies: the hand-off does them.
        result.stopped = not derived or outcome.status in ("deferred", "split")
        return None if result.stopped else outcome

    def _start(self, result: ChainResult) -> tuple[Origin, set[date]] | Recheck | None:
        """The table's origin and its snapshot days as listed, once the days before a bootstrap's are
        retired; None for a table without history, or (``failed`` set) one that cannot be read."""
        table = result.table
        try:
            origin = self.layout.origin(table)
            if origin is None:
                return None
            if origin.moved:
                return Recheck(origin.day)
            built = set(self.layout.built_days(table))
            if origin.base.ref.kind == "bootstrap":
                result.retired += self.retire_before(table, origin.day, built)
        except (UnreadableInputError, DeliveryError) as exc:
            result.failed = f"{table}: {exc}"
            return None
        return origin, built

    def derive(self, result: ChainResult, outcome: DayResult, may_build: Callable[[], bool]) -> bool:
        """The derived copies of a day this run checked (``changelake.snapshot.derived``); False when
        ``may_build`` says there is no time left for the next one (it reads the whole day again and
        writes it: a build of its own). A failure is the format's alone: the JSON day stays
        published, later days are built, and the run reports it in ``derived_failed`` and fails."""
        if outcome.manifest is None:
            return True
        failures = [failure for failure in result.derived_failed if failure[0] != outcome.day]
        for index, derived in enumerate(self.derived):
            if not may_build():
                if index:  # the copies tried so far replace the day's earlier failures
                    result.derived_failed = failures
                return False
            try:
                copy = derived.refresh(outcome.manifest)
            # Any failure, DuckDB's own errors and a full /tmp included, not only ours: the JSON layer
            # of this table and of every later table must not wait on an optional derived copy.
            # Nothing is swallowed: the failure is in the summary, and the run raises at its end.
            except Exception as exc:  # noqa: BLE001
                ours = isinstance(exc, (UnreadableInputError, DeliveryError))  # they name the object already
                detail = str(exc) if ours else f"{type(exc).__name__}: {exc}"
                failures.append((outcome.day, f"{outcome.name} ({derived.name}): {detail}"))
                continue
            if copy is not None:
                outcome.derived[derived.name] = copy
        result.derived_failed = failures
        return True

    def retire_before(self, table: str, first: date, built: Iterable[date] | None = None) -> int:
        """Retire every snapshot day of ``table`` before ``first`` (its bootstrap day), and their
        derived days; how many snapshot days were retired. ``built``: the table's snapshot days as
        listed (listed here if None). The derived days go first and are listed on their own, so a run
        that dies part way, or a run of an older origin that published one meanwhile, leaves nothing
        the next call does not find."""
        for derived in self.derived:
            for day in self.layout.layer_days(derived.prefix, table):
                if day < first:
                    derived.publication(table, day).retire()
        days = sorted(
            day for day in (self.layout.built_days(table) if built is None else built) if day < first
        )
        return sum(self.layout.day_publication(table, day).retire() for day in days)

    def base_of(self, table: str, day: date, previous: DayResult | None = None) -> Base | Recheck:
        """The snapshot of ``day`` as a base: as this run left it (``previous``), or read (and
        rolled forward); a ``Recheck`` when it cannot be built on as it is."""
        publication = self.layout.day_publication(table, day)
        manifest, etag = (previous.manifest, previous.etag) if previous is not None else (None, None)
        if manifest is None:
            manifest, current = self.layout.read_day(table, day)
            if manifest is None or current is None:
                return Recheck(None)
            promotion = publication.promote(current)
            if promotion.status == "superseded":
                return Recheck(day)
            if promotion.status == "lost":
                return Recheck(None)
            etag = current.etag
        return Base.of_day(manifest, publication.manifest_key, etag)


def _recheck_from(check: date | None, recheck: Recheck) -> date | None:
    """The day a chain is checked from again: every day when a base was lost (so it is rebuilt),
    else from the moved day on, or from where it was checked already if that is earlier."""
    if recheck.day is None:
        return None
    return recheck.day if check is None else min(check, recheck.day)


def _record(result: ChainResult, outcome: DayResult) -> None:
    result.days = [day for day in result.days if day.day != outcome.day] + [outcome]

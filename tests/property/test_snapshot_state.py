"""Every snapshot day equals DuckDB's ``state_at`` at the day's end, whatever the order of event
times within the removed keys' horizon.

Each example: a random history of a few items over three days, whose changes are stamped around
the two midnights in any order relative to their sequence numbers within the removed keys'
horizon (event times are approximate; sequence numbers, of 21 or 40 digits, are the order), some
of them arriving late. The snapshot is built from the changes that arrived first, then rebuilt
once the late ones are in raw/; each time, every day read through the DuckDB ``snapshot`` view
must hold exactly the items ``state_at`` gives at the end of that day (``analytics.duck``, the
contract's rule), with their last change's fields.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from analytics.duck import connect
from changelake.formats.change_line import ChangeLine
from changelake.snapshot.merge import REMOVED_KEYS_HORIZON
from tests.conftest import Stack
from tests.functional.snapshot.support import builder, put_raw
from tests.snapshot_support import change

DAYS = (date(2026, 11, 21), date(2026, 11, 22), date(2026, 11, 23))
#: Times of day on either side of each midnight, and one in between.
TIMES = ("00:00:00.100", "00:00:00.200", "12:00:00.000", "23:59:59.800", "23:59:59.900")
#: Examples: each builds and checks three days twice on the moto server (about a second).
EXAMPLES = 20
_tables = itertools.count()


@dataclass(frozen=True)
class Step:
    """One write of the history, in the order DynamoDB made them (the sequence numbers' order)."""

    key: int
    day: int
    time: int
    delete: bool
    late: bool


steps = st.lists(
    st.builds(
        Step,
        key=st.integers(0, 3),
        day=st.integers(0, len(DAYS) - 1),
        time=st.integers(0, len(TIMES) - 1),
        delete=st.integers(0, 2).map(lambda n: n == 0),
        late=st.integers(0, 4).map(lambda n: n == 0),
    ),
    min_size=1,
    max_size=25,
)


def history(table: str, writes: list[Step], long_from: int) -> list[tuple[ChangeLine, bool]]:
    """The change lines of ``writes`` (and whether each arrives late): INSERT, MODIFY or REMOVE as
    the item existed then (a delete of a missing item has no record); sequence numbers rise with
    the order of the writes, from 21 digits to 40 at ``long_from``. A write stamped more than
    ``REMOVED_KEYS_HORIZON`` before an earlier one has no record either: event times are off from
    the order of the writes by seconds at most, and the snapshot relies on that bound."""
    existing: set[str] = set()
    lines = []
    latest = datetime.combine(DAYS[0], datetime.min.time(), tzinfo=UTC)
    for position, step in enumerate(writes):
        pk = f"item-{step.key}"
        stamped = datetime.fromisoformat(f"{DAYS[step.day].isoformat()}T{TIMES[step.time]}+00:00")
        if (step.delete and pk not in existing) or stamped < latest - REMOVED_KEYS_HORIZON:
            continue
        latest = max(latest, stamped)
        name = "REMOVE" if step.delete else "MODIFY" if pk in existing else "INSERT"
        (existing.discard if step.delete else existing.add)(pk)
        sequence = (10**39 if position >= long_from else 10**20) + position
        at = f"{DAYS[step.day].isoformat()}T{TIMES[step.time]}+00:00"
        lines.append((change(pk, at, sequence, name=name, table=table, v=position), step.late))
    return lines


def _exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def assert_every_day_is_state_at(stack: Stack, table: str, lake: Path) -> int:
    """Every day of ``table``'s snapshot, read by DuckDB from a copy of the lake, equals ``state_at``
    at its end; how many days hold a snapshot."""
    for key in stack.keys(f"raw/{table}/") + stack.keys(f"snapshot/{table}/"):
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        (lake / key).write_bytes(stack.read(key))
    built = 0
    with connect(lake) as duck:
        for day in DAYS:
            state = duck.execute(
                "SELECT keys::VARCHAR, record::VARCHAR FROM state_at(?)", [f"{day.isoformat()}T23:59:59.999Z"]
            ).fetchall()
            snapshot = duck.execute(
                "SELECT keys::VARCHAR, record::VARCHAR FROM snapshot WHERE dt = ?", [day]
            ).fetchall()
            expected = {keys: _exact(record) for keys, record in state}
            actual = {keys: _exact(record) for keys, record in snapshot}
            assert sorted(actual) == sorted(expected), day
            for keys, record in expected.items():
                line = actual[keys]
                assert line["item"] == record["new_image"], (day, keys)
                fields = ("event_id", "event_time", "sequence_number")
                assert [line[name] for name in fields] == [record[name] for name in fields], (day, keys)
            built += (lake / f"snapshot/{table}/dt={day.isoformat()}/_manifest.json").exists()
    return built


@settings(max_examples=EXAMPLES)
@given(writes=steps, long_from=st.integers(0, 25))
# A change stamped after midnight but older than the change before midnight (the MODIFY case), and
# older than a REMOVE before midnight, arriving late (the REMOVE case, rebuilt).
@example(
    writes=[Step(0, 0, 2, False, False), Step(0, 1, 0, False, False), Step(0, 0, 4, False, False)],
    long_from=9,
)
@example(
    writes=[Step(0, 0, 2, False, False), Step(0, 1, 0, False, True), Step(0, 0, 4, True, False)], long_from=2
)
def test_every_snapshot_day_is_the_state_at_its_end(
    stack: Stack, tmp_path: Path, writes: list[Step], long_from: int
) -> None:
    # GIVEN a history whose event times may run against its sequence numbers, part of it arriving late
    number = next(_tables)
    table = f"items{number:04d}"
    lines = history(table, writes, long_from)
    first = [line for line, late in lines if not late]
    late = [line for line, late in lines if late]
    build = builder(stack, tmp_path)

    # WHEN the snapshot is built from what arrived first
    put_raw(stack, first)
    build.bring_up_to_date(table, DAYS[-1])

    # THEN every day is the state at its end, and the days from the first change on are all there
    first_days = {line.event_time[:10] for line in first}
    built = assert_every_day_is_state_at(stack, table, tmp_path / f"lake-{number}-first")
    assert built == (len(DAYS) - DAYS.index(date.fromisoformat(min(first_days))) if first else 0)

    # WHEN the late changes arrive and the days are brought up to date again
    put_raw(stack, late)
    chain = build.bring_up_to_date(table, DAYS[-1])

    # THEN every day is again the state at its end, the late changes' days and every later one rebuilt
    assert chain.failed is None
    assert_every_day_is_state_at(stack, table, tmp_path / f"lake-{number}-late")

"""parse_change_line with orjson's fast check gives exactly json.loads' verdict and routing fields."""

from __future__ import annotations

import random

import pytest

from changelake.exceptions import RecordRejected
from changelake.formats import change_line as records
from changelake_testing.stream_records import change_batch


def _outcome(line: bytes) -> object:
    try:
        return tuple(records.parse_change_line(line))
    except RecordRejected as exc:
        return exc.reason


def _mutations(line: bytes, rng: random.Random) -> list[bytes]:
    cut = rng.randrange(1, len(line))
    at = rng.randrange(len(line))
    flipped = bytearray(line)
    flipped[at] = rng.randrange(256)
    return [
        line,
        line[:cut],
        bytes(flipped),
        line[:at] + rng.choice([b"\x01", b"\xff", b"\xed\xa0\x80", b'"', b"\\", b",", b"}"]) + line[at:],
        b"\xef\xbb\xbf" + line,  # UTF-8 BOM: not strict JSON, both refuse
        line.replace(b'"size_bytes":', b'"nan":NaN,"size_bytes":'),  # not strict JSON either
        line.replace(b'"size_bytes":', b'"big":1' + b"0" * 400 + b',"size_bytes":'),
        line.replace(b'"size_bytes":', b'"s":"\\ud800","size_bytes":'),  # lone surrogate escape
        line[:-1] + b',"table":"other_table","event_id":"dup"}',  # duplicate routing keys: last wins
        b" \t" + line + b"\r\n",
        line.replace(b'{"event_id":"', b'{"event_id":"\\u00e9\\ud83d\\ude00'),
    ]


def test_fast_check_matches_json_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN real change lines and 11 kinds of damage or oddity each (seeded)
    rng = random.Random(20261122)
    lines = [records.to_change_line(record).line for record in change_batch(rng, 300)]
    cases = [mutated for line in lines for mutated in _mutations(line, rng)]
    # WHEN parsed with orjson first, and with json.loads alone
    fast = [_outcome(line) for line in cases]
    monkeypatch.setattr(records, "_fast_loads", None)
    strict = [_outcome(line) for line in cases]
    # THEN every verdict, error and routing field is the same
    assert fast == strict
    assert any(isinstance(outcome, str) for outcome in strict)  # the damage did reject lines
    assert sum(isinstance(outcome, tuple) for outcome in strict) > len(lines)  # and oddities passed

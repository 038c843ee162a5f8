"""The manifest of a compacted partition: generations, part names, the document (compaction.manifest)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from changelake.compaction.manifest import (
    CompactionManifest,
    Counts,
    generation_of,
    read_open_part,
)
from changelake.formats.layout import Partition, part_name
from changelake.integrations.base import ObjectInfo
from changelake.storage.parts import OpenPart

#: A manifest as compaction wrote it before the manifest had a type (the committed format 1).
WRITTEN: dict[str, Any] = {
    "format": 1,
    "table": "orders",
    "dt": "2026-11-22",
    "hour": "07",
    "generation": "4b1d0c6e2f0a9b8c7d6e",
    "compacted_at": "2026-11-23T00:15:02.123456Z",
    "seconds": 1.25,
    "inputs": [
        {"key": "raw/orders/dt=2026-11-22/hour=07/a.jsonl.gz", "etag": '"e1"', "size": 300},
        {"key": "raw/orders/dt=2026-11-22/hour=07/b.jsonl.gz", "etag": '"e2"', "size": 200},
    ],
    "outputs": [
        {
            "key": "compacted/orders/dt=2026-11-22/hour=07/part-4b1d0c6e2f0a9b8c7d6e-00000.jsonl.gz",
            "upload_id": "u-1",
            "part_etags": ['"p1"', '"p2"'],
            "rows": 9,
            "bytes": 480,
            "uncompressed_bytes": 2000,
        }
    ],
    "rows_in": 10,
    "rows_out": 9,
    "duplicates_removed": 1,
    "conflicts": 0,
    "bytes_in": 500,
    "bytes_out": 480,
}


def test_generation_depends_on_the_inputs_only() -> None:
    a = [ObjectInfo("raw/a", '"1"', 10), ObjectInfo("raw/b", '"2"', 20)]
    assert generation_of(a) == generation_of(a[::-1])
    assert generation_of(a) != generation_of([*a, ObjectInfo("raw/c", '"3"', 5)])
    assert generation_of(a) != generation_of([a[0], ObjectInfo("raw/b", '"9"', 20)])
    assert part_name(generation_of(a), 3).endswith("-00003.jsonl.gz")


def test_a_committed_manifest_reads_back_and_writes_the_same_document() -> None:
    # GIVEN a manifest document as compaction commits it
    # WHEN it is read
    manifest = CompactionManifest.from_json(WRITTEN)

    # THEN every field is typed
    assert manifest is not None
    assert manifest.partition == Partition("orders", date(2026, 11, 22), 7)
    assert manifest.compacted_at == datetime(2026, 11, 23, 0, 15, 2, 123456, tzinfo=UTC)
    assert manifest.inputs[1] == ObjectInfo("raw/orders/dt=2026-11-22/hour=07/b.jsonl.gz", '"e2"', 200)
    assert manifest.outputs[0].part_etags == ('"p1"', '"p2"')
    assert manifest.counts == Counts(10, 9, 1, 0, 500, 480)
    # AND written again it is the very same document, key for key and in the same order
    assert json.dumps(manifest.to_json()) == json.dumps(WRITTEN)


def test_the_inputs_are_compared_as_listed() -> None:
    manifest = CompactionManifest.from_json(WRITTEN)
    assert manifest is not None
    listed = [ObjectInfo(item["key"], item["etag"], item["size"]) for item in WRITTEN["inputs"]]
    assert manifest.has_inputs(listed)
    assert not manifest.has_inputs(listed[:1])
    assert not manifest.has_inputs([listed[0], ObjectInfo(listed[1].key, '"changed"', 200)])


def _without(field: str) -> dict[str, Any]:
    document = copy.deepcopy(WRITTEN)
    del document[field]
    return document


def _with(path: tuple[Any, ...], value: object) -> dict[str, Any]:
    document = copy.deepcopy(WRITTEN)
    target: Any = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    "document",
    [
        {},
        _with(("format",), 2),
        _without("generation"),
        _with(("table",), "../etc"),
        _with(("dt",), "2026-02-30"),
        _with(("seconds",), "fast"),
        _with(("inputs",), None),
        _with(("inputs", 0, "size"), -1),
        _with(("outputs", 0), "part-1"),
        _with(("outputs", 0, "part_etags"), [1, 2]),
        _with(("rows_out",), True),
    ],
)
def test_a_document_it_cannot_vouch_for_is_none_and_gets_rebuilt(document: dict[str, Any]) -> None:
    assert CompactionManifest.from_json(document) is None


def test_a_part_is_named_in_the_manifest_as_publication_reads_it() -> None:
    part = OpenPart("compacted/t/dt=2026-11-22/hour=07/part-g-00000.jsonl.gz", "u", ('"a"',), 1, 2, 3)
    assert read_open_part(part.to_json()) == part
    assert list(part.to_json())[:3] == ["key", "upload_id", "part_etags"]

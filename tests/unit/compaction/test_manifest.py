"""The manifest's names: generations and parts (compaction.manifest)."""

from __future__ import annotations

from changelake.compaction.manifest import generation_of, part_name
from changelake.integrations.base import ObjectInfo


def test_generation_depends_on_the_inputs_only() -> None:
    a = [ObjectInfo("raw/a", '"1"', 10), ObjectInfo("raw/b", '"2"', 20)]
    assert generation_of(a) == generation_of(a[::-1])
    assert generation_of(a) != generation_of([*a, ObjectInfo("raw/c", '"3"', 5)])
    assert generation_of(a) != generation_of([a[0], ObjectInfo("raw/b", '"9"', 20)])
    assert part_name(generation_of(a), 3).endswith("-00003.jsonl.gz")

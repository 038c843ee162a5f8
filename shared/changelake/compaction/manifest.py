"""The manifest of a compacted partition: the commit record naming its inputs and its outputs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from changelake.integrations.base import ObjectInfo
from changelake.publication import DATA_PREFIX

PART_PREFIX = DATA_PREFIX
MANIFEST_FORMAT = 1


def generation_of(inputs: Sequence[ObjectInfo]) -> str:
    """The generation name of a set of raw inputs: equal inputs, equal output keys."""
    text = "\n".join(f"{item.key}\t{item.etag}\t{item.size}" for item in sorted(inputs, key=lambda i: i.key))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def part_name(generation: str, index: int) -> str:
    return f"{PART_PREFIX}{generation}-{index:05d}.jsonl.gz"


def inputs_document(inputs: Sequence[ObjectInfo]) -> list[dict[str, Any]]:
    return [{"key": item.key, "etag": item.etag, "size": item.size} for item in inputs]

"""JSON at the edges: untrusted input is read into a value or a rejection; what we write is strict.

Message bodies, change lines and stream-failure records come from outside our control (a foreign
producer, a corrupted or hand-made message). ``rejecting`` is the one place where whatever a decoder
raises for such input becomes a ``RecordRejected`` of that input (it goes to quarantine and the rest
of its batch flows on), never an exception that fails the batch around it.

Every line we write is strict JSON (RFC 8259, UTF-8): DuckDB, Athena and Spark refuse the ``NaN``,
``Infinity`` and ``-Infinity`` that Python's json module reads and writes by default. Lines we copy
from input are read strictly (``loads_checked``), values we encode are written strictly
(``dumps_strict``); input that cannot be either is rejected.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from changelake.exceptions import RecordRejected

#: What decoders raise for input they cannot read: ``ValueError`` and its subclasses (json's and
#: orjson's ``JSONDecodeError``, ``UnicodeDecodeError``, ``binascii.Error``, pydantic's
#: ``ValidationError``), ``zlib.error``, and ``RecursionError`` (the json module recurses once per
#: level of nesting). ``MemoryError`` is deliberately absent: it says this invocation ran out of
#: memory, not that the input is bad, so the delivery fails and is retried instead of quarantined.
UNREADABLE: tuple[type[Exception], ...] = (ValueError, zlib.error, RecursionError)

#: Deepest nesting of arrays and objects the recursive json module is given; deeper text is
#: rejected before parsing. json.loads gives up near 995 levels at the top of a stack and earlier
#: deeper in one, so without this check the verdict on a line would depend on the caller (the
#: aggregator and compaction must agree on every line). 512 leaves room for callers up to about 450
#: frames deep (ours run well under 100); a DynamoDB item nests at most 32 levels (a change line 34),
#: and orjson refuses past 1024 itself.
MAX_NESTING = 512

Rejection = Callable[[str], RecordRejected]

_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


@contextmanager
def rejecting(reason: str, rejection: Rejection = RecordRejected, *, detail: bool = False) -> Iterator[None]:
    """Turn whatever a decoder inside the block raises for unreadable input into ``rejection``.

    The reason is ``reason`` (with the decoder's message when ``detail``); input nested past the
    recursion limit says so. Keep the block to the decoding itself: everything it raises is
    blamed on the input.
    """
    try:
        yield
    except RecursionError:
        # No chaining: the traceback of a recursion is as deep as the recursion.
        raise rejection(f"{reason}: nested deeper than the recursion limit") from None
    except UNREADABLE as exc:
        raise rejection(f"{reason}: {exc}"[:500] if detail else reason) from exc


def nesting_exceeds(data: bytes, limit: int) -> bool:
    """Whether JSON text ``data`` nests arrays and objects deeper than ``limit``, found without recursion.

    Brackets inside string literals do not count. For text that is not JSON the answer is an
    upper bound of how deep a parser would recurse before refusing it, which only changes the
    reason it is rejected for.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep, decided in C
    depth = 0
    for bracket in _BRACKET.findall(_STRING_LITERAL.sub(b"", data)):
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads_document(data: str | bytes, reason: str, rejection: Rejection = RecordRejected) -> Any:
    """``data`` parsed by orjson (strict RFC 8259, no recursion in Python); ``rejection`` if not JSON."""
    with rejecting(reason, rejection):
        return orjson.loads(data)


def loads_checked(
    data: str | bytes,
    reason: str,
    rejection: Rejection = RecordRejected,
    max_nesting: int = MAX_NESTING,
    *,
    strict: bool = True,
) -> Any:
    """``data`` parsed by the json module, its nesting checked first; ``rejection`` if unreadable.

    For what orjson refuses but JSON allows (lone surrogate escapes, numbers past a double), and
    for documents that must not nest deeper than ``max_nesting`` (at most ``MAX_NESTING``).
    ``strict`` (for text we store or write again) also refuses what json.loads alone would take:
    ``NaN``, ``Infinity`` and ``-Infinity``, and bytes that are not UTF-8 (a BOM, UTF-16, encoded
    surrogates). Not strict is for reading fields out of text that is already rejected.
    """
    limit = min(max_nesting, MAX_NESTING)
    # surrogatepass: the scan only looks at ASCII brackets and quotes; json.loads judges the text.
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if nesting_exceeds(raw, limit):
        raise rejection(f"{reason}: nested deeper than {limit} levels")
    if not strict:
        with rejecting(reason, rejection):
            return json.loads(data)

    def refuse(constant: str) -> Any:
        raise rejection(f"{reason}: {constant} is not strict JSON")

    with rejecting(reason, rejection):
        # str: json.loads would guess UTF-16/32 and pass encoded surrogates in bytes; a BOM it refuses.
        return json.loads(data.decode() if isinstance(data, bytes) else data, parse_constant=refuse)


def value_nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests dicts and lists deeper than ``limit`` (as its JSON text would nest
    brackets), found without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            members: Iterable[Any] = node.values()
        elif isinstance(node, list | tuple):
            members = node
        else:
            continue
        if depth > limit:
            return True
        pending.extend((member, depth + 1) for member in members)
    return False


def dumps_strict(
    value: Any, reason: str, rejection: Rejection = RecordRejected, max_nesting: int = MAX_NESTING
) -> str:
    """``value`` as compact strict JSON (ASCII, as ``json.dumps`` writes it); ``rejection`` naming what
    it holds when it cannot be (``NaN`` or ``Infinity``, nesting past ``max_nesting`` levels).

    The nesting is checked before json.dumps runs, not left to its recursion limit: that limit is
    the interpreter's (json.dumps gives up near 1,000 levels on CPython 3.11 and writes 5,000 on
    3.13), and what we write must read back through ``loads_checked`` on every one.
    """
    limit = min(max_nesting, MAX_NESTING)
    if value_nesting_exceeds(value, limit):
        raise rejection(f"{reason}: nested deeper than {limit} levels")
    with rejecting(reason, rejection, detail=True):
        return json.dumps(value, separators=(",", ":"), allow_nan=False)

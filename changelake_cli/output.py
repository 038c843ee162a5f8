"""Printing: data on stdout (tables, or JSON with --json), messages on stderr.

Colour and boxed tables only when stdout is a terminal and ``NO_COLOR`` is not set; otherwise
plain columns separated by two spaces, which read well in a log and split with ``awk``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from changelake.runs import RunRecord

#: JSON has no NaN or infinities (``json.dumps`` would print a bare ``NaN``, which parsers refuse).
NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def jsonable(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """``value`` as plain JSON types: dataclasses as objects (or their own ``to_json`` document, as a
    run record's), times with a zone as ISO 8601 UTC ending in Z (a time without one as it is: no
    zone is made up for it), NaN and infinities as the strings of ``NON_FINITE``, bytes as base64,
    Decimal as a string of its digits."""
    if isinstance(value, RunRecord):
        return json.loads(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE[str(value)]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal | Path):
        return str(value)
    return value


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def utc_text(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


STYLES = {"ok": "green", "bad": "bold red", "warn": "yellow", "dim": "dim", "title": "bold"}


@dataclasses.dataclass(frozen=True)
class Styled:
    """Text with a style name of ``STYLES``; shown plain where there is no colour."""

    text: str
    style: str

    def __str__(self) -> str:
        return self.text


Cell = str | Styled


class Output:
    """Where and how one command prints."""

    def __init__(
        self,
        *,
        as_json: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.as_json = as_json
        environ = os.environ if environ is None else environ
        self.terminal = bool(getattr(self.out, "isatty", lambda: False)()) and not as_json
        self.color = self.terminal and "NO_COLOR" not in environ
        self._console = Console(
            file=self.out, force_terminal=self.terminal, no_color=not self.color, width=160
        )

    def json(self, value: Any) -> None:
        print(json.dumps(jsonable(value), indent=2, allow_nan=False), file=self.out)

    def message(self, text: str) -> None:
        print(text, file=self.err)

    def _rich(self, cell: Cell) -> Text:
        if isinstance(cell, Styled) and self.color:
            return Text(cell.text, style=STYLES[cell.style])
        return Text(str(cell))

    def line(self, *pieces: Cell) -> None:
        if self.terminal:
            self._console.print(Text.assemble(*(self._rich(p) for p in pieces)))
        else:
            print("".join(str(p) for p in pieces), file=self.out)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
        if self.terminal:
            table = Table(title=title, title_justify="left", header_style="bold")
            for header in headers:
                table.add_column(header, overflow="fold")
            for row in rows:
                table.add_row(*(self._rich(c) for c in row))
            self._console.print(table)
            return
        print(title, file=self.out)
        cells = [list(headers)] + [[str(c) for c in row] for row in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=self.out)
        print(file=self.out)

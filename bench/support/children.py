"""The rows measured in child processes of their own (compaction of an hour, the snapshot of a day):
the child's command line, its CPU seconds, and its figures read back by the parent.

A child prints its figures as one JSON line last; the parent runs it with ``run_child`` and reads
that line. Each child is a fresh interpreter, so its peak RSS is its own and generating the inputs
does not pollute its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cpu_seconds(*who: int) -> float:
    """User + system CPU seconds so far of ``who`` (default: this process and its waited-for children)."""
    total = 0.0
    for target in who or (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(target)
        total += usage.ru_utime + usage.ru_stime
    return total


def child_environment(**extra: str) -> dict[str, str]:
    """This environment for a child run from the repository root (``shared`` and ``.`` importable)."""
    path = os.pathsep.join(filter(None, ["shared", ".", os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, **extra, "PYTHONPATH": path}


def run_child(module: str, args: list[str], environ: dict[str, str]) -> dict[str, Any]:
    """Run ``python -m <module> <args>`` and return the JSON of the last line it printed."""
    command = [sys.executable, "-m", module, *args]
    completed = subprocess.run(command, check=False, capture_output=True, env=environ, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {completed.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures


def sized_parser(module: str, doc: str, size_help: str) -> argparse.ArgumentParser:
    """The command line of a row measured on ``--size-mb`` of generated input; the row adds the
    (hidden) options of its children."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=float, default=1000.0, help=size_help)
    parser.add_argument("--workdir", type=Path, default=None, help="keep (and reuse) the inputs there")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--spill-dir", default=tempfile.gettempdir(), help=argparse.SUPPRESS)
    return parser


def print_result(
    result: dict[str, Any], as_json: bool, print_table: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """``result`` as JSON only, or as the row's table."""
    if as_json:
        print(json.dumps(result, indent=1))
    else:
        print_table(result)
    return result

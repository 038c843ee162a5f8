"""The full check of compaction's fast path, run in a second process (so on a second core).

Compaction's fast path reads each raw line's routing fields from the prefix we write
(``change_line.parse_own_prefix``), which does not read past the prefix. To keep results and errors
exactly those of the full parse, every raw object is also copied, still compressed, to a scratch
file, and a child process (``python -m changelake.compaction.check``) reads each file as it is
finished and checks that every line the fast path takes parses with ``parse_change_line`` to the
very same ``ChangeLine``. Compaction asks for the verdict before it commits; anything but a clean
``ok`` (a mismatch, a line that is not JSON, bad gzip, a crashed or missing child) makes it rebuild
the partition on the strict path, which then reports the first bad line as it always did.

A slice worker (``changelake.compaction.slices``) keeps only the lines of its slice, and drops the
others by the ``event_time`` of their prefix. Its check (``--slice K/N``) parses in full every line
the slice keeps, and of the lines it drops those whose ``event_time`` might read otherwise in full:
a line that spells ``"event_time"`` once and holds no ``\\u`` escape cannot hold a second
``event_time`` key (a key equal to it is spelled literally or with a ``\\u`` escape), so if it is
JSON at all its full parse has the prefix's ``event_time``, and it belongs to the slice its prefix
names, whose own check parses it in full. So the lines N slices drop are each checked by the slice
that keeps them, and the N checks together parse each line about once, not N times.

Protocol: the parent writes one scratch file path per line on the child's stdin and closes it;
the child deletes each file once read and prints one JSON object: ``{"ok": bool, "maxrss_kb": n}``
(its own peak RSS).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

from changelake.compaction.slices import Slice
from changelake.exceptions import RecordRejected, UnreadableInputError
from changelake.formats.change_line import parse_change_line, parse_own_prefix
from changelake.storage.lines import gzip_chunks, split_lines


def _event_time_read_once(line: bytes) -> bool:
    """Whether ``line`` can hold no ``event_time`` key but the one its prefix holds (see the module)."""
    return line.count(b'"event_time"') == 1 and b"\\u" not in line


def lines_agree(path: Path, share: Slice | None = None) -> bool:
    """Whether every line of the gzip file at ``path`` that the fast path takes (of ``share`` only:
    see the module) parses in full the same."""
    with path.open("rb") as file:
        try:
            for line in split_lines(gzip_chunks(file.read, resource=str(path))):
                fast = parse_own_prefix(line)
                if fast is None:
                    continue  # the fast path fell back to parse_change_line for this line itself
                if share is not None and not share.holds(fast.event_time) and _event_time_read_once(line):
                    continue  # another slice's line: that slice's check parses it in full
                try:
                    if parse_change_line(line) != fast:
                        return False
                except RecordRejected:
                    return False
        except UnreadableInputError:
            return False
    return True


def _slice_arguments(share: Slice | None) -> list[str]:
    return [] if share is None else ["--slice", f"{share.index}/{share.count}"]


class FullCheck:
    """The parent's side: scratch copies of the raw objects, handed to the checking process."""

    def __init__(self, spill_dir: Path, share: Slice | None = None) -> None:
        spill_dir.mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix="changelake-check-", dir=spill_dir)
        self.maxrss_kb = 0
        self.broken = False  # a scratch copy failed: the verdict is "not checked"
        # The child imports changelake from where this process does.
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._process: subprocess.Popen[bytes] | None
        try:
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter, our module, two integers
                [sys.executable, "-m", "changelake.compaction.check", *_slice_arguments(share)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=environ,
            )
        except OSError:
            self._process = None  # no second process here: the verdict is "not checked"
        self._count = 0

    def __enter__(self) -> FullCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def new_file(self) -> tuple[Path, IO[bytes]]:
        """A scratch file for the next raw object's compressed bytes.

        If the scratch space fails (``/tmp`` full), copying stops, the files are removed and the
        verdict becomes "not checked": the run falls back to the strict path, which needs no copy.
        """
        path = Path(self._tmp.name) / f"raw-{self._count:06d}.jsonl.gz"
        self._count += 1
        return path, _Scratch(self, path)  # type: ignore[return-value]

    def finished(self, path: Path) -> None:
        """Hand a complete scratch file to the child (it is checked in the order handed)."""
        if self.broken:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            return
        if self._process is not None and self._process.stdin is not None:
            try:
                self._process.stdin.write(os.fsencode(path) + b"\n")
                self._process.stdin.flush()
            except OSError:
                pass  # the child died: verdict() says not ok

    def verdict(self) -> bool:
        """Wait for the child; True only if it checked every file handed and all agreed."""
        process, self._process = self._process, None
        if process is None:
            return False
        if self.broken:
            process.kill()
            process.wait()
            return False
        try:
            output, _ = process.communicate()
        except OSError:
            return False
        try:
            answer: Any = json.loads(output)
        except ValueError:
            return False
        if not isinstance(answer, dict):
            return False
        self.maxrss_kb = int(answer.get("maxrss_kb") or 0)
        return process.returncode == 0 and answer.get("ok") is True

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self._tmp.cleanup()


class _Scratch:
    """A scratch file that turns a failed write into ``FullCheck.broken`` instead of an error."""

    def __init__(self, check: FullCheck, path: Path) -> None:
        self.check = check
        self.path = path
        self.file: IO[bytes] | None = None
        if not check.broken:
            try:
                self.file = path.open("wb")
            except OSError:
                check.broken = True

    def write(self, data: bytes) -> None:
        if self.file is not None and not self.check.broken:
            try:
                self.file.write(data)
            except OSError:
                self.check.broken = True

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                self.check.broken = True
            self.file = None

    def __enter__(self) -> _Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(stdin: IO[bytes], stdout: IO[str], share: Slice | None = None) -> None:
    ok = True
    for raw in stdin:
        path = Path(os.fsdecode(raw.rstrip(b"\n")))
        if ok:
            ok = lines_agree(path, share)
        path.unlink(missing_ok=True)
    stdout.write(json.dumps({"ok": ok, "maxrss_kb": peak_rss_kb()}) + "\n")


def peak_rss_kb() -> int:
    """This process's own peak RSS in KiB.

    ``VmHWM`` where there is /proc: ``ru_maxrss`` survives ``exec`` and so can include the RSS of
    the process this one was forked from.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for row in status:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--slice"]:  # K/N, from FullCheck
        index, count = (int(number) for number in sys.argv[2].split("/"))
        main(sys.stdin.buffer, sys.stdout, Slice(index, count))
    else:
        main(sys.stdin.buffer, sys.stdout)

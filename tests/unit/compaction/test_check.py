"""The full check of compaction's fast path, in a second process (changelake.compaction.check)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from changelake.compaction.check import FullCheck, lines_agree
from changelake.formats.change_line import to_change_line
from changelake_testing.stream_records import change_batch


def good_lines(seed: int, count: int = 40) -> list[bytes]:
    records = change_batch(random.Random(seed), count, start=1_795_348_800, item_bytes=300)
    return [to_change_line(record).line for record in records]


def gz(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_lines_we_wrote_agree(tmp_path: Path) -> None:
    # GIVEN a raw file of lines to_change_line wrote, and one of lines the fast path leaves alone
    good = gz(tmp_path / "good.gz", good_lines(1))
    other = gz(tmp_path / "other.gz", [b'{"not": "ours"}', b"not json"])
    # WHEN checked THEN both agree (the fast path's fallback parses the others itself)
    assert lines_agree(good)
    assert lines_agree(other)


@pytest.mark.parametrize(
    "bad",
    [
        lambda line: line.split(b',"keys":')[0] + b',"keys":{broken',
        lambda line: line[:-1] + b',"table":"other"}',
        lambda line: line[:-1] + b',"event_time":"2026-11-22T12:59:59.999Z"}',
        lambda line: line + b"\xff",
    ],
    ids=["not-json-after-prefix", "table-repeated", "event-time-repeated", "bad-utf8-after"],
)
def test_a_line_whose_full_parse_differs_from_its_prefix_does_not_agree(tmp_path: Path, bad: object) -> None:
    # GIVEN a raw file whose 7th line has our prefix but a full parse that differs or fails
    lines = good_lines(2)
    lines[6] = bad(lines[6])  # type: ignore[operator]
    # WHEN checked THEN it does not agree
    assert not lines_agree(gz(tmp_path / "bad.gz", lines))


def test_broken_gzip_does_not_agree(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(b"\n".join(good_lines(3)))[:-9])
    assert not lines_agree(path)


def _run(tmp_path: Path, files: list[list[bytes]]) -> tuple[bool, list[Path]]:
    with FullCheck(tmp_path) as check:
        for lines in files:
            path, file = check.new_file()
            with file:
                file.write(gzip.compress(b"\n".join(lines)))
            check.finished(path)
        verdict = check.verdict()
        return verdict, [path for folder in tmp_path.iterdir() for path in folder.iterdir()]


def test_the_checking_process_agrees_on_good_files_and_removes_them(tmp_path: Path) -> None:
    # GIVEN three good raw files handed to the checking process
    verdict, left = _run(tmp_path, [good_lines(4), good_lines(5), good_lines(6)])
    # THEN its verdict is ok and the scratch files were consumed
    assert verdict is True
    assert left == []


def test_the_checking_process_refuses_when_one_file_disagrees(tmp_path: Path) -> None:
    lines = good_lines(7)
    lines[3] = lines[3][:-1] + b',"table":"other"}'
    verdict, _ = _run(tmp_path, [good_lines(8), lines, good_lines(9)])
    assert verdict is False
    # AND the scratch folder is gone once the check is closed
    assert list(tmp_path.iterdir()) == []


def test_a_checking_process_that_dies_means_not_verified(tmp_path: Path) -> None:
    # GIVEN a check whose process was killed before it answered
    with FullCheck(tmp_path) as check:
        assert check._process is not None
        check._process.kill()
        path, file = check.new_file()
        file.close()
        check.finished(path)
        # WHEN asked THEN the verdict is not ok (compaction then rebuilds strictly)
        assert check.verdict() is False


def test_a_checking_process_that_cannot_start_means_not_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no interpreter to start the checking process with
    monkeypatch.setattr("sys.executable", str(tmp_path / "no-such-python"))
    with FullCheck(tmp_path) as check:
        path, file = check.new_file()
        with file:
            file.write(gzip.compress(b"\n".join(good_lines(10))))
        check.finished(path)
        # WHEN asked THEN the verdict is not ok (compaction then rebuilds strictly), nothing raised
        assert check.verdict() is False


def test_a_scratch_copy_that_cannot_be_written_means_not_verified(tmp_path: Path) -> None:
    # GIVEN a check whose second scratch file cannot be written (as when /tmp is full)
    with FullCheck(tmp_path) as check:
        first, file = check.new_file()
        with file:
            file.write(gzip.compress(b"\n".join(good_lines(11))))
        check.finished(first)
        # a folder where the next scratch file goes: opening it for writing fails with an OSError
        (Path(check._tmp.name) / "raw-000001.jsonl.gz").mkdir()
        second, file = check.new_file()
        with file:
            file.write(b"lost")
        check.finished(second)
        # WHEN asked THEN nothing was raised and the verdict is "not checked"
        assert check.broken
        assert check.verdict() is False

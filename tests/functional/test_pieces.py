"""Records of pieces built in parallel, and the commit's refusal of a missing or stale piece."""

from __future__ import annotations

import gzip

import pytest

from changelake.formats.layout import part_name
from changelake.integrations.s3 import S3Store
from changelake.pieces import CommitRefusedError, Piece, PieceRecord, PieceRecords
from changelake.publication import Output
from tests.functional.memory_s3 import InMemoryS3

FOLDER = "snapshot/orders/dt=2026-11-22/"


def store() -> S3Store:
    return S3Store("lake", client=InMemoryS3())


def written(s3: S3Store, generation: str, piece: Piece) -> PieceRecord:
    """A piece's part, written as an open upload, and its record."""
    key = FOLDER + part_name(generation, 0, piece=piece.name)
    upload_id = s3.create_multipart(key)
    etag = s3.upload_part(key, upload_id, 1, gzip.compress(b'{"keys":{"pk":"a"}}\n'))
    return PieceRecord(piece, generation, (Output(key, upload_id, (etag,)),), counts={"items": 1})


def test_the_records_of_every_piece_are_collected_in_piece_order() -> None:
    # GIVEN three pieces of generation g1, recorded out of order
    s3 = store()
    records = PieceRecords(s3, FOLDER)
    pieces = [written(s3, "g1", Piece(index, 3)) for index in (2, 0, 1)]
    for record in pieces:
        records.put(record)

    # WHEN they are collected
    collected = records.collect("g1", 3)

    # THEN each piece is there once, in piece order, with what it wrote
    assert [record.piece for record in collected] == [Piece(0, 3), Piece(1, 3), Piece(2, 3)]
    assert collected[2] == pieces[0]
    # AND the records are not data: they live under the folder's _pieces/
    keys = [item.key for item in s3.list_objects(FOLDER)]
    assert all(key.startswith(FOLDER + "_pieces/g1/") for key in keys)


def test_a_missing_piece_is_refused_naming_it_and_what_was_found_instead() -> None:
    # GIVEN pieces 0 and 2 of 3 built from the current inputs, and piece 1 built from older inputs
    s3 = store()
    records = PieceRecords(s3, FOLDER)
    for generation, index in (("g2", 0), ("g2", 2), ("g1", 1)):
        records.put(written(s3, generation, Piece(index, 3)))

    # WHEN generation g2 is collected THEN the commit is refused, naming the missing piece and the stale one
    with pytest.raises(CommitRefusedError) as refused:
        records.collect("g2", 3)
    assert "1 of 3 pieces of generation g2 are missing (piece 1)" in str(refused.value)
    assert "other inputs: generation g1 in 3" in str(refused.value)


def test_pieces_of_the_same_inputs_in_another_count_are_not_taken_for_these() -> None:
    # GIVEN both pieces of generation g1 built in 2
    s3 = store()
    records = PieceRecords(s3, FOLDER)
    for index in range(2):
        records.put(written(s3, "g1", Piece(index, 2)))

    # WHEN the commit asks for 4 pieces THEN it is refused: none of them was built
    with pytest.raises(CommitRefusedError, match="4 of 4 pieces"):
        records.collect("g1", 4)


def test_a_rerun_piece_replaces_its_record_and_clear_takes_every_record_away() -> None:
    # GIVEN piece 0 of 1 written twice (a retry after a timeout), and an unreadable record beside it
    s3 = store()
    records = PieceRecords(s3, FOLDER)
    records.put(written(s3, "g1", Piece(0, 1)))
    rerun = written(s3, "g1", Piece(0, 1))
    records.put(rerun)
    s3.put(FOLDER + "_pieces/g1/junk.json", b"not json", content_type="application/json")

    # WHEN collected THEN the rerun's uploads are the ones named, and the junk is not a piece
    assert records.collect("g1", 1) == (rerun,)

    # WHEN cleared THEN nothing is left under _pieces/
    assert records.clear() == 2
    assert list(s3.list_objects(FOLDER)) == []


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 2), (0, 1001)])
def test_a_piece_that_cannot_exist_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match=r"piece|pieces"):
        Piece(index, count)


def test_piece_part_names_sort_in_piece_order() -> None:
    names = [part_name("g", index, piece=Piece(piece, 12).name) for piece in (10, 2, 0) for index in (1, 0)]
    assert sorted(names) == [
        part_name("g", index, piece=Piece(piece, 12).name) for piece in (0, 2, 10) for index in (0, 1)
    ]

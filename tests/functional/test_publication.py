"""Publication of a folder on a moto server, as another layer (a day of snapshot/) would use it."""

from __future__ import annotations

import gzip

import pytest

from changelake.exceptions import PreconditionFailedError
from changelake.integrations.s3 import S3Store
from changelake.publication import Output, Publication, SideFiles
from tests.conftest import Stack

FOLDER = "snapshot/orders/dt=2026-11-22/"


def open_upload(store: S3Store, name: str, lines: bytes) -> Output:
    """A data file written as an open (invisible) multipart upload, as a builder leaves it."""
    key = FOLDER + name
    upload_id = store.create_multipart(key)
    return Output(key, upload_id, (store.upload_part(key, upload_id, 1, gzip.compress(lines)),))


def data_files(stack: Stack) -> list[str]:
    return [key for key in stack.keys(FOLDER) if not key.rsplit("/", 1)[1].startswith("_")]


def test_a_callers_own_manifest_is_committed_and_its_files_published(stack: Stack) -> None:
    # GIVEN a day's file written as an open upload, and a manifest body of the caller's own
    store = S3Store(stack.bucket, client=stack.s3)
    publication = Publication(store, FOLDER)
    output = open_upload(store, "part-g1-00000.jsonl.gz", b'{"keys":{"pk":"a"}}\n')
    body = {"format": "snapshot-1", "items": 1, "outputs": [{**output.document(), "items": 1}]}

    # WHEN it is committed (first manifest of the folder) and promoted
    assert publication.read() is None
    committed = publication.commit(body, replacing=None)
    assert data_files(stack) == []  # committed, not yet visible
    promotion = publication.promote(committed)

    # THEN the file is visible, and the manifest reads back with the caller's fields and outputs
    assert (promotion.status, promotion.completed, promotion.deleted) == ("published", 1, 0)
    assert data_files(stack) == [output.key]
    current = publication.read()
    assert current is not None
    assert (current.body["items"], current.outputs, current.etag) == (1, (output,), committed.etag)


def test_a_commit_replacing_a_manifest_that_changed_meanwhile_is_refused(stack: Stack) -> None:
    # GIVEN a published first generation, read by two builders
    store = S3Store(stack.bucket, client=stack.s3)
    publication = Publication(store, FOLDER)
    first = open_upload(store, "part-g1-00000.jsonl.gz", b"1\n")
    publication.promote(publication.commit({"outputs": [first.document()]}, replacing=None))
    read = publication.read()

    # WHEN one commits a second generation on what it read, then the other does the same
    second = open_upload(store, "part-g2-00000.jsonl.gz", b"2\n")
    newer = publication.commit({"outputs": [second.document()]}, replacing=read)
    third = open_upload(store, "part-g3-00000.jsonl.gz", b"3\n")

    # THEN the second commit (and a first-manifest commit) are refused; the first one stands
    with pytest.raises(PreconditionFailedError):
        publication.commit({"outputs": [third.document()]}, replacing=read)
    with pytest.raises(PreconditionFailedError):
        publication.commit({"outputs": [third.document()]}, replacing=None)
    current = publication.read()
    assert current is not None
    assert current.etag == newer.etag


def test_promoting_a_superseded_manifest_brings_the_folder_to_the_newer_one(stack: Stack) -> None:
    # GIVEN generation 1 published, then generation 2 committed over it by A and generation 3 over
    # that by B, neither promoted yet
    store = S3Store(stack.bucket, client=stack.s3)
    publication = Publication(store, FOLDER)
    first = open_upload(store, "part-g1-00000.jsonl.gz", b"1\n")
    publication.promote(publication.commit({"outputs": [first.document()]}, replacing=None))
    second = open_upload(store, "part-g2-00000.jsonl.gz", b"2\n")
    a = publication.commit({"outputs": [second.document()]}, replacing=publication.read())
    third = open_upload(store, "part-g3-00000.jsonl.gz", b"3\n")
    b = publication.commit({"outputs": [third.document()]}, replacing=a)

    # WHEN A promotes its (superseded) manifest, then B its own
    by_a = publication.promote(a)
    by_b = publication.promote(b)

    # THEN A completed nothing of its own, completed B's file and removed generation 1; B had nothing
    # left to do; the folder holds exactly the current manifest's file
    assert (by_a.status, by_a.completed, by_a.deleted) == ("superseded", 1, 1)
    assert (by_b.status, by_b.writes) == ("published", 0)
    assert data_files(stack) == [third.key]


def test_side_files_are_published_and_replaced_with_the_data(stack: Stack) -> None:
    # GIVEN a folder with side files (not data, under "_side/"), and a generation of data and side files
    store = S3Store(stack.bucket, client=stack.s3)
    publication = Publication(store, FOLDER, side=SideFiles("side", "_side/part-"))
    data, side = (
        open_upload(store, "part-g1-00000.jsonl.gz", b"1\n"),
        open_upload(store, "_side/part-g1-00000", b"s1\n"),
    )
    first = publication.commit({"outputs": [data.document()], "side": [side.document()]}, replacing=None)

    # WHEN it is promoted, then a second generation committed over it and promoted
    assert publication.promote(first).status == "published"
    assert sorted(stack.keys(FOLDER)) == sorted([FOLDER + "_manifest.json", data.key, side.key])
    data2, side2 = (
        open_upload(store, "part-g2-00000.jsonl.gz", b"2\n"),
        open_upload(store, "_side/part-g2-00000", b"s2\n"),
    )
    second = publication.commit({"outputs": [data2.document()], "side": [side2.document()]}, replacing=first)
    promotion = publication.promote(second)

    # THEN both kinds of file are completed together, and the first generation's are deleted
    assert (promotion.status, promotion.completed, promotion.deleted) == ("published", 2, 2)
    assert sorted(stack.keys(FOLDER)) == sorted([FOLDER + "_manifest.json", data2.key, side2.key])
    current = publication.read()
    assert current is not None
    assert current.outputs == (data2, side2)
    # AND side files must be named as not data, and a side file among the data is refused
    with pytest.raises(ValueError, match="not data"):
        Publication(store, FOLDER, side=SideFiles("side", "side/part-"))
    with pytest.raises(ValueError, match="outputs must be data files"):
        publication.commit({"outputs": [side2.document()], "side": []}, replacing=current)


@pytest.mark.parametrize(
    "key",
    ["snapshot/orders/dt=2026-11-23/part-x.jsonl.gz", FOLDER + "_part.jsonl.gz", FOLDER + "part-x/y.gz"],
)
def test_a_manifest_naming_a_file_outside_the_folders_data_is_refused(stack: Stack, key: str) -> None:
    publication = Publication(S3Store(stack.bucket, client=stack.s3), FOLDER)
    with pytest.raises(ValueError, match="outputs must be data files of the folder"):
        publication.commit({"outputs": [Output(key, "u", ("e",)).document()]}, replacing=None)
    assert stack.keys(FOLDER) == []


def test_an_unreadable_manifest_reads_as_one_without_outputs_and_is_never_promoted(stack: Stack) -> None:
    # GIVEN a folder with a data file and a manifest that is not JSON
    store = S3Store(stack.bucket, client=stack.s3)
    stack.s3.put_object(Bucket=stack.bucket, Key=FOLDER + "part-old.jsonl.gz", Body=b"x")
    stack.s3.put_object(Bucket=stack.bucket, Key=FOLDER + "_manifest.json", Body=b"{not json")
    publication = Publication(store, FOLDER)

    # WHEN it is read and promoted
    current = publication.read()
    assert current is not None
    promotion = publication.promote(current)

    # THEN it has no outputs, promotion reports it lost (to be rebuilt) and deletes nothing
    assert (current.outputs, promotion.status, promotion.writes) == (None, "lost", 0)
    assert data_files(stack) == [FOLDER + "part-old.jsonl.gz"]

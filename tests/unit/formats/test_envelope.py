"""The SQS body envelope: packing under the size limit, decoding, claim checks, corrupt bodies."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from changelake.exceptions import EnvelopeError, RecordRejected
from changelake.formats import envelope
from changelake.formats.change_line import to_change_line
from changelake.formats.envelope import (
    ATTRIBUTE_RESERVE_BYTES,
    Claim,
    MessagePacker,
    OversizedRecord,
    PackedMessage,
    claim_body,
    claim_payload,
    decode_body,
    decode_claim_object,
)
from changelake_testing.stream_records import change_batch

LIMITS = [1024, 4096, 65_536, 262_144, 1_048_576]


def _incompressible(rng: random.Random, size: int) -> bytes:
    """Random bytes with no newline (a line never contains one)."""
    return rng.randbytes(size).replace(b"\n", b"\x00")


def mix_random(rng: random.Random, limit: int) -> list[bytes]:
    words = [b"alpha", b"bravo", b"charlie", b"delta", b"echo", b"foxtrot", b"golf"]
    lines = []
    for i in range(rng.randrange(20, 200)):
        size = rng.choice([20, 200, 1000, limit // 8, limit // 2])
        filler = b" ".join(rng.choice(words) for _ in range(size // 6 + 1))[:size]
        lines.append(b'{"event_id":"%d","notes":"%s"}' % (i, filler))
    return lines


def mix_incompressible(rng: random.Random, limit: int) -> list[bytes]:
    return [_incompressible(rng, rng.randrange(1, max(2, limit // 3))) for _ in range(rng.randrange(5, 40))]


def mix_compressible(rng: random.Random, limit: int) -> list[bytes]:
    return [b"a" * rng.randrange(1, limit * 4) for _ in range(rng.randrange(5, 40))]


def mix_near_limit(rng: random.Random, limit: int) -> list[bytes]:
    # Incompressible lines right around what one message can hold, plus small ones between.
    sizes = [limit * 3 // 4 - 700, limit * 3 // 4 - 400, limit * 3 // 4, limit, limit * 2, 1, 10]
    return [_incompressible(rng, max(1, rng.choice(sizes) + rng.randrange(-64, 64))) for _ in range(12)]


def mix_change_records(rng: random.Random, limit: int) -> list[bytes]:
    records = change_batch(rng, 150, item_bytes=rng.choice([200, 1024, 3000]))
    return [to_change_line(record).line for record in records]


MIXES: dict[str, Callable[[random.Random, int], list[bytes]]] = {
    "random": mix_random,
    "incompressible": mix_incompressible,
    "compressible": mix_compressible,
    "near_limit": mix_near_limit,
    "change_records": mix_change_records,
}


def pack_all(limit: int, lines: list[bytes]) -> list[PackedMessage | OversizedRecord]:
    return list(MessagePacker(limit).pack(enumerate(lines)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("mix", sorted(MIXES))
@pytest.mark.parametrize("limit", LIMITS)
def test_packer_never_exceeds_limit_and_keeps_every_record_in_order(limit: int, mix: str, seed: int) -> None:
    # GIVEN a mix of record lines (random, incompressible, compressible, near the limit, real records)
    rng = random.Random(f"{limit}-{mix}-{seed}")
    lines = MIXES[mix](rng, limit)
    # WHEN they are packed for a message limit
    out = pack_all(limit, lines)
    # THEN no body is larger than the limit minus the room kept for attributes
    for item in out:
        if isinstance(item, PackedMessage):
            assert len(item.body.encode()) <= limit - ATTRIBUTE_RESERVE_BYTES
            assert item.body.isascii()
    # AND decoding every body (and taking oversized records whole) gives back every line, in order
    recovered: list[bytes] = []
    for item in out:
        # each item starts exactly where the previous one ended
        assert item.first_index == len(recovered)
        if isinstance(item, PackedMessage):
            decoded = decode_body(item.body)
            assert isinstance(decoded, list)
            assert len(decoded) == item.count
            recovered.extend(decoded)
        else:
            assert item.line.endswith(b"\n")
            recovered.append(item.line[:-1])
    assert recovered == lines


@pytest.mark.parametrize("limit", LIMITS)
def test_record_too_large_alone_becomes_oversized(limit: int) -> None:
    # GIVEN a small record, an incompressible record as large as the whole limit, and another small one
    rng = random.Random(limit)
    big = _incompressible(rng, limit)
    lines = [b'{"a":1}', big, b'{"b":2}']
    # WHEN packed
    out = pack_all(limit, lines)
    # THEN the big one is an OversizedRecord at its index, with its line (and newline) whole
    assert [type(item) for item in out] == [PackedMessage, OversizedRecord, PackedMessage]
    oversized = out[1]
    assert isinstance(oversized, OversizedRecord)
    assert oversized.first_index == 1
    assert oversized.line == big + b"\n"
    # AND the small ones around it travel in messages of their own, in order
    assert [item.first_index for item in out] == [0, 1, 2]
    assert decode_body(out[0].body) == [b'{"a":1}']  # type: ignore[union-attr]
    assert decode_body(out[2].body) == [b'{"b":2}']  # type: ignore[union-attr]


def test_compressible_records_share_one_message() -> None:
    # GIVEN 1,000 similar 1 KB records (JSON compresses well)
    lines = [b'{"event_id":"%06d","notes":"%s"}' % (i, b"x" * 1000) for i in range(1000)]
    # WHEN packed under 256 KiB
    out = pack_all(262_144, lines)
    # THEN compression lets all of them (about 1 MB of text) travel in a single message
    assert len(out) == 1
    assert isinstance(out[0], PackedMessage)
    assert out[0].count == 1000


def test_incremental_add_and_finish_match_pack() -> None:
    # GIVEN lines fed one by one with add() and then finish()
    rng = random.Random(7)
    lines = mix_random(rng, 4096)
    packer = MessagePacker(4096)
    out: list[PackedMessage | OversizedRecord] = []
    for index, line in enumerate(lines):
        out.extend(packer.add(line, index))
    out.extend(packer.finish())
    # WHEN compared with pack() THEN the bodies are the same
    assert [getattr(i, "body", None) for i in out] == [
        getattr(i, "body", None) for i in pack_all(4096, lines)
    ]
    # AND finishing again yields nothing
    assert list(packer.finish()) == []


def test_packing_nothing_yields_nothing() -> None:
    # GIVEN no lines WHEN packed THEN no message is produced
    assert pack_all(4096, []) == []


def test_limit_without_room_for_data_is_refused() -> None:
    # GIVEN a limit smaller than the attribute reserve plus the envelope
    # WHEN a packer is built THEN it refuses
    with pytest.raises(ValueError, match="leaves no room"):
        MessagePacker(ATTRIBUTE_RESERVE_BYTES + 10)


def test_packing_is_deterministic() -> None:
    # GIVEN the same lines packed twice WHEN compared THEN the bodies are byte-identical
    lines = mix_random(random.Random(3), 65_536)
    first = [i.body for i in pack_all(65_536, lines) if isinstance(i, PackedMessage)]
    second = [i.body for i in pack_all(65_536, lines) if isinstance(i, PackedMessage)]
    assert first == second


# ---------------------------------------------------------------- claims


def test_claim_round_trip() -> None:
    # GIVEN an oversized record line (as the packer yields it, with its newline)
    line = _incompressible(random.Random(1), 300_000) + b"\n"
    # WHEN its claim payload is stored and the claim body sent
    payload, digest = claim_payload(line)
    body = claim_body("claims/ab/abc.jsonl.gz", digest)
    # THEN the body decodes to a Claim naming the key and digest
    claim = decode_body(body)
    assert claim == Claim("claims/ab/abc.jsonl.gz", digest, 1)
    assert digest == hashlib.sha256(line).hexdigest()
    # AND the payload is gzip that decodes, verified, to the one line
    assert gzip.decompress(payload) == line
    assert decode_claim_object(payload, claim) == [line[:-1]]


def test_claim_payload_is_deterministic() -> None:
    # GIVEN the same line twice WHEN claimed THEN payload and digest are identical (idempotent keys)
    assert claim_payload(b"x" * 1000 + b"\n") == claim_payload(b"x" * 1000 + b"\n")


def test_claim_with_wrong_sha_is_rejected() -> None:
    # GIVEN a claim payload and a claim whose digest is of other content
    payload, _ = claim_payload(b'{"a":1}\n')
    _, other = claim_payload(b'{"a":2}\n')
    # WHEN decoded THEN it is an EnvelopeError naming the claim
    with pytest.raises(EnvelopeError, match=r"claim claims/k does not match its sha256"):
        decode_claim_object(payload, Claim("claims/k", other, 1))


def test_claim_with_wrong_count_is_rejected() -> None:
    # GIVEN a payload with two lines and a claim for one
    data = b'{"a":1}\n{"a":2}\n'
    payload, digest = claim_payload(data)
    # WHEN decoded THEN it is rejected
    with pytest.raises(EnvelopeError, match="holds 2 records, not 1"):
        decode_claim_object(payload, Claim("claims/k", digest, 1))


def test_claim_payload_not_gzip_is_rejected() -> None:
    # GIVEN a claim object that is not gzip WHEN decoded THEN it is an EnvelopeError
    with pytest.raises(EnvelopeError, match="is not gzip"):
        decode_claim_object(b"plain text", Claim("claims/k", "0" * 64, 1))


# ---------------------------------------------------------------- corrupt bodies


def _batch(lines: list[bytes], **overrides: Any) -> str:
    document: dict[str, Any] = {
        "v": 1,
        "kind": "batch",
        "count": len(lines),
        "data": base64.b64encode(gzip.compress(b"".join(line + b"\n" for line in lines))).decode(),
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not _DROP})


_DROP = object()
_GOOD_GZIP = gzip.compress(b'{"a":1}\n{"a":2}\n')


def test_hand_built_batch_body_decodes() -> None:
    # GIVEN a well-formed body built by hand WHEN decoded THEN it gives its lines
    assert decode_body(_batch([b'{"a":1}', b'{"a":2}'])) == [b'{"a":1}', b'{"a":2}']


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"v":1}', "not a string"),
        (None, "not a string"),
        (5, "not a string"),
        ({"v": 1}, "not a string"),
        ("", "not JSON"),
        ("{", "not JSON"),
        ("hello", "not JSON"),
        ("[" * 5000 + "]" * 5000, "not JSON"),  # nested past the recursion limit
        ('{"v":1,"kind":"batch","count":1,"data":' + "[" * 5000 + "]" * 5000 + "}", "not JSON"),
        ("[1,2]", "not a changelake v1 envelope"),
        ('"text"', "not a changelake v1 envelope"),
        (_batch([b"x"], v=2), "not a changelake v1 envelope"),
        (_batch([b"x"], v="1"), "not a changelake v1 envelope"),
        (_batch([b"x"], v=_DROP), "not a changelake v1 envelope"),
        (_batch([b"x"], kind="other"), "unknown envelope kind 'other'"),
        (_batch([b"x"], kind=_DROP), "unknown envelope kind"),
        (_batch([b"x"], data=_DROP), "unknown envelope kind"),
        (_batch([b"x"], data=5), "unknown envelope kind"),
        (_batch([b"x"], count=0), "count must be a positive integer"),
        (_batch([b"x"], count=-1), "count must be a positive integer"),
        (_batch([b"x"], count="1"), "count must be a positive integer"),
        (_batch([b"x"], count=1.0), "count must be a positive integer"),
        (_batch([b"x"], count=True), "count must be a positive integer"),
        (_batch([b"x"], count=_DROP), "count must be a positive integer"),
        (_batch([b"x"], data="!!!!"), "not base64"),
        (_batch([b"x"], data="YWJj\n"), "not base64"),
        (_batch([b"x"], data="YWJjZA="), "not base64"),
        (_batch([b"x"], data="é"), "not base64"),
        (_batch([b"x"], data=base64.b64encode(b"hello world").decode()), "is not gzip"),
        (_batch([b"x"], data=base64.b64encode(_GOOD_GZIP[: len(_GOOD_GZIP) // 2]).decode()), "truncated"),
        (_batch([b"x"], data=base64.b64encode(_GOOD_GZIP[:-8]).decode()), "truncated"),
        (_batch([b"x"], data=""), "truncated"),
        (_batch([b"x", b"y"], count=3), "says 3 records but holds 2"),
        (_batch([b"x", b"y"], count=1), "says 1 records but holds 2"),
        (json.dumps({"v": 1, "kind": "claim", "count": 1, "sha256": "0" * 64}), "claim envelope needs key"),
        (json.dumps({"v": 1, "kind": "claim", "count": 1, "key": "", "sha256": "0" * 64}), "needs key"),
        (json.dumps({"v": 1, "kind": "claim", "count": 1, "key": "k", "sha256": "0" * 63}), "needs key"),
        (json.dumps({"v": 1, "kind": "claim", "count": 1, "key": "k"}), "needs key"),
        (json.dumps({"v": 1, "kind": "claim", "count": 1, "key": 5, "sha256": "0" * 64}), "needs key"),
    ],
)
def test_decode_body_rejects_corrupt_bodies(body: Any, match: str) -> None:
    # GIVEN a body that is not a well-formed changelake envelope
    # WHEN decoded THEN it is an EnvelopeError (a RecordRejected: the message goes to quarantine)
    with pytest.raises(EnvelopeError, match=match) as info:
        decode_body(body)
    assert isinstance(info.value, RecordRejected)


def test_decompression_bomb_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a cap on inflated size and a body whose data inflates past it
    monkeypatch.setattr(envelope, "MAX_DECOMPRESSED_BYTES", 10_000)
    body = _batch([b"a" * 20_000])
    assert len(body) < 1000  # tiny on the wire
    # WHEN decoded THEN it is refused as a bomb, before inflating everything
    with pytest.raises(EnvelopeError, match="inflates past 10000 bytes"):
        decode_body(body)


def test_decompression_bomb_in_claim_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a capped inflated size and a claim object that inflates past it
    monkeypatch.setattr(envelope, "MAX_DECOMPRESSED_BYTES", 10_000)
    payload, digest = claim_payload(b"a" * 50_000 + b"\n")
    # WHEN decoded THEN it is refused
    with pytest.raises(EnvelopeError, match="inflates past"):
        decode_claim_object(payload, Claim("claims/k", digest, 1))


def test_body_just_under_the_bomb_cap_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a cap and a body that inflates to less than it WHEN decoded THEN it is accepted
    monkeypatch.setattr(envelope, "MAX_DECOMPRESSED_BYTES", 10_000)
    assert decode_body(_batch([b"a" * 9_000])) == [b"a" * 9_000]

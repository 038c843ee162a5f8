"""The load generator: a realistic mix of changes written to ChangeTable at a set rate.

INSERT (put_item of a new key), MODIFY (update_item of a live key), REMOVE (delete_item of a live
key) and TTL-style deletes (delete_item of an item whose ``expires_at`` has passed, which the
local mapping marks with DynamoDB's TTL ``userIdentity``; moto never expires items itself).
Items are about ``item_bytes`` large and carry every DynamoDB type (stream_records.realistic_item).
Every write changes the item, so each one yields exactly one stream record.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from changelake_local.aws import client
from changelake_local.esm import TTL_ATTRIBUTE
from changelake_local.stream_records import realistic_item


def _as_boto3(value: Any) -> Any:
    """DynamoDB JSON (binary as base64 text) -> what boto3's low-level client takes (bytes)."""
    if isinstance(value, dict):
        if "B" in value and len(value) == 1:
            return {"B": base64.b64decode(value["B"])}
        if "BS" in value and len(value) == 1:
            return {"BS": [base64.b64decode(item) for item in value["BS"]]}
        return {key: _as_boto3(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_boto3(item) for item in value]
    return value


@dataclass
class WriteCounts:
    inserts: int = 0
    modifies: int = 0
    removes: int = 0
    ttl_deletes: int = 0
    errors: int = 0
    last_error: str | None = None

    @property
    def total(self) -> int:
        return self.inserts + self.modifies + self.removes + self.ttl_deletes


@dataclass
class _Keys:
    live: list[tuple[str, str]] = field(default_factory=list)
    expired: list[tuple[str, str]] = field(default_factory=list)


class LoadGenerator:
    """``rate`` changes per second into ``table`` from ``writers`` threads until stopped."""

    def __init__(
        self,
        endpoint: str,
        table: str,
        *,
        rate: float,
        item_bytes: int = 1024,
        writers: int = 0,
        seed: int = 7,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.endpoint = endpoint
        self.table = table
        self.rate = rate
        self.item_bytes = item_bytes
        # one writer thread per 25 changes/s (each waits on its round trips), from 2 to 8
        self.writers = writers or max(2, min(8, int(rate) // 25))
        self.seed = seed
        self.counts = WriteCounts()
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.started_at = time.monotonic()
        for index in range(self.writers):
            thread = threading.Thread(
                target=self._write_loop, args=(index,), name=f"writer-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.stopped_at or time.monotonic()) - self.started_at

    def _count(self, kind: str) -> None:
        with self._lock:
            setattr(self.counts, kind, getattr(self.counts, kind) + 1)

    def _write_loop(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)  # noqa: S311 - test data, not secrets
        dynamodb = client("dynamodb", self.endpoint)
        keys = _Keys()
        interval = self.writers / self.rate
        next_at = time.monotonic()
        serial = 0
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            next_at = max(next_at + interval, time.monotonic() - 1.0)  # catch up at most 1 s
            serial += 1
            try:
                kind = self._write_one(dynamodb, rng, keys, f"w{index}-{serial:08d}")
            except Exception as exc:  # noqa: BLE001 - counted and shown; the run goes on, as a client's would
                with self._lock:
                    self.counts.errors += 1
                    self.counts.last_error = f"{type(exc).__name__}: {exc}"
                continue
            self._count(kind)

    def _write_one(self, dynamodb: Any, rng: random.Random, keys: _Keys, serial: str) -> str:
        roll = rng.random()
        if keys.expired and roll < 0.08:
            key = keys.expired.pop(rng.randrange(len(keys.expired)))
            dynamodb.delete_item(TableName=self.table, Key=_key(key))
            return "ttl_deletes"
        if keys.live and roll < 0.20:
            key = keys.live.pop(rng.randrange(len(keys.live)))
            dynamodb.delete_item(TableName=self.table, Key=_key(key))
            return "removes"
        if keys.live and roll < 0.55:
            key = keys.live[rng.randrange(len(keys.live))]
            dynamodb.update_item(
                TableName=self.table,
                Key=_key(key),
                UpdateExpression=(
                    "SET amount = :amount, active = :active, history = list_append(history, :entry)"
                ),
                ExpressionAttributeValues={
                    ":amount": {"N": f"{rng.randrange(10**6)}.{rng.randrange(100):02d}"},
                    ":active": {"BOOL": rng.random() < 0.5},
                    ":entry": {"L": [{"M": {"at": {"N": str(int(time.time()))}, "ok": {"BOOL": True}}}]},
                },
            )
            return "modifies"
        pk = f"customer#{rng.randrange(10**4):04d}"
        item = realistic_item(rng, pk, self.item_bytes)
        item["sk"] = {"S": f"order#{serial}"}
        expired = rng.random() < 0.12
        # an item whose TTL has passed (DynamoDB deletes those within days; the generator does it)
        item[TTL_ATTRIBUTE] = {"N": str(int(time.time()) + (-60 if expired else 86_400 * 30))}
        dynamodb.put_item(TableName=self.table, Item=_as_boto3(item))
        (keys.expired if expired else keys.live).append((pk, item["sk"]["S"]))
        return "inserts"


def _key(key: tuple[str, str]) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}

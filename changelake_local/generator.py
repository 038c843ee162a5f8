"""The load generator: a realistic mix of changes written to one or more tables at a set rate.

INSERT (a put of a new key), MODIFY (a put that replaces a live key's item with a changed one;
DynamoDB streams it as MODIFY with both images), REMOVE (a delete of a live key) and TTL-style
deletes (a delete of an item whose ``expires_at`` has passed, which the local mapping marks with
DynamoDB's TTL ``userIdentity``; moto never expires items itself). Items are about ``item_bytes``
large and carry every DynamoDB type (``changelake_testing.stream_records.realistic_item``); bodies
come from a pool made up front, so generating a change costs a dict copy, not a new random item.

The changes go out as BatchWriteItem requests of up to 25 (no key twice in one request, as
DynamoDB requires), which is how a bulk writer talks to DynamoDB and 25 times fewer round trips
to the single moto process than one request per change (the profile's biggest cost at 300/s).
Every write changes the item (``amount`` is unique per write), so each one yields exactly one
stream record. With several tables (``make run TABLES=2``), writer ``i`` writes to table ``i`` modulo
their number, and there is at least one writer per table, so the rate is spread over them evenly.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from changelake_local.aws import client
from changelake_local.ttl import TTL_ATTRIBUTE
from changelake_testing.stream_records import realistic_item


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


#: DynamoDB's limit of requests in one BatchWriteItem.
BATCH_LIMIT = 25
#: Distinct item bodies made up front (each write copies one and sets its key and amount).
POOL_SIZE = 256


class LoadGenerator:
    """``rate`` changes per second into ``tables`` from ``writers`` threads until stopped."""

    def __init__(
        self,
        endpoint: str,
        tables: Sequence[str],
        *,
        rate: float,
        item_bytes: int = 1024,
        writers: int = 0,
        seed: int = 7,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if not tables:
            raise ValueError("the load generator needs at least one table")
        self.endpoint = endpoint
        self.tables = list(tables)
        self.rate = rate
        self.item_bytes = item_bytes
        # one writer thread per 100 changes/s (each waits on its round trips), from 2 to 6, and at
        # least one per table (each writer writes to one table)
        self.writers = max(writers or max(2, min(6, int(rate) // 100)), len(self.tables))
        # about 10 requests per second per writer, at most 25 changes each
        self.batch = max(1, min(BATCH_LIMIT, round(rate / self.writers / 10)))
        self.seed = seed
        self.counts = WriteCounts()
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        pool_rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self._pool = [_as_boto3(realistic_item(pool_rng, "pool", item_bytes)) for _ in range(POOL_SIZE)]

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

    def _write_loop(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)  # noqa: S311 - test data, not secrets
        dynamodb = client("dynamodb", self.endpoint)
        table = self.tables[index % len(self.tables)]
        keys = _Keys()
        interval = self.batch * self.writers / self.rate
        next_at = time.monotonic()
        serial = 0
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            next_at = max(next_at + interval, time.monotonic() - 1.0)  # catch up at most 1 s
            requests: list[dict[str, Any]] = []
            kinds: Counter[str] = Counter()
            taken: set[tuple[str, str]] = set()
            for _ in range(self.batch):
                serial += 1
                kind, request = self._change(rng, keys, taken, index, serial)
                requests.append(request)
                kinds[kind] += 1
            try:
                self._send(dynamodb, table, requests)
            except Exception as exc:  # noqa: BLE001 - counted and shown; the run goes on, as a client's would
                with self._lock:
                    self.counts.errors += len(requests)
                    self.counts.last_error = f"{type(exc).__name__}: {exc}"
                continue
            with self._lock:
                for kind, count in kinds.items():
                    setattr(self.counts, kind, getattr(self.counts, kind) + count)

    def _send(self, dynamodb: Any, table: str, requests: list[dict[str, Any]]) -> None:
        """One BatchWriteItem to ``table``, then its UnprocessedItems again until none are left."""
        pending: dict[str, list[dict[str, Any]]] = {table: requests}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    def _change(
        self, rng: random.Random, keys: _Keys, taken: set[tuple[str, str]], index: int, serial: int
    ) -> tuple[str, dict[str, Any]]:
        """The next change as a BatchWriteItem request, on a key not ``taken`` in this batch."""
        roll = rng.random()
        if keys.expired and roll < 0.08:
            key = keys.expired.pop(rng.randrange(len(keys.expired)))
            taken.add(key)
            return "ttl_deletes", {"DeleteRequest": {"Key": _key(key)}}
        if keys.live and roll < 0.20:
            key = keys.live.pop(rng.randrange(len(keys.live)))
            taken.add(key)
            return "removes", {"DeleteRequest": {"Key": _key(key)}}
        if keys.live and roll < 0.55:
            key = keys.live[rng.randrange(len(keys.live))]
            if key not in taken:
                taken.add(key)
                item = self._item(rng, key, index, serial, expires=int(time.time()) + 86_400 * 30)
                return "modifies", {"PutRequest": {"Item": item}}
        key = (f"customer#{rng.randrange(10**4):04d}", f"order#w{index}-{serial:08d}")
        expired = rng.random() < 0.12
        # an item whose TTL has passed (DynamoDB deletes those within days; the generator does it)
        item = self._item(
            rng, key, index, serial, expires=int(time.time()) + (-60 if expired else 86_400 * 30)
        )
        (keys.expired if expired else keys.live).append(key)
        taken.add(key)
        return "inserts", {"PutRequest": {"Item": item}}

    def _item(
        self, rng: random.Random, key: tuple[str, str], index: int, serial: int, *, expires: int
    ) -> dict[str, Any]:
        item = dict(self._pool[rng.randrange(len(self._pool))])
        item.update(_key(key))
        item["amount"] = {"N": f"{serial}.{index:02d}"}  # unique per write: every put changes the item
        item["active"] = {"BOOL": rng.random() < 0.5}
        item[TTL_ATTRIBUTE] = {"N": str(expires)}
        return item


def _key(key: tuple[str, str]) -> dict[str, Any]:
    return {"pk": {"S": key[0]}, "sk": {"S": key[1]}}

"""Lambda's delivery rules, played step by step so a property test controls every interleaving.

``StreamShard`` is one table's stream with its checkpoint: a batch is invoked from the checkpoint,
a partial failure (ReportBatchItemFailures) moves the checkpoint to the failed record, a function
error retries the batch bisected, and a finished batch may be delivered again (at least once).
``QueuePoller`` is the SQS mapping: received messages are invoked in a shuffled batch, the
successes deleted, the failures made visible again (SQS moves a message to ChangeDLQ on its
fourth receive, maxReceiveCount 3); a successful message is sometimes not deleted (redelivered).
Crashes come from the fault schedule, before the work and after the work but before the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from changelake_local.faults import FaultInjector, FaultKind
from tests.conftest import FakeLambdaContext, Stack
from tests.functional.helpers import sqs_event

Handler = Any  # a functions/<name>/app.py module

#: Invocations of one stream batch before the model gives up (a hang guard: Lambda would send the
#: range to StreamFailureQueue; with at most a third of requests failing this is never reached).
MAX_STREAM_ATTEMPTS = 100


@dataclass
class Invocations:
    """What the model did, for the property test's report."""

    stream_invocations: int = 0
    queue_invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    redeliveries: int = 0


def invoke(
    handler: Handler, event: dict[str, Any], faults: FaultInjector, counts: Invocations
) -> dict[str, Any] | None:
    """One invocation; None when the function failed (raised, or crashed before answering)."""
    try:
        faults.crash(FaultKind.CRASH_BEFORE_WORK)
        response = handler.lambda_handler(event, FakeLambdaContext())
        faults.crash(FaultKind.CRASH_BEFORE_ANSWER)
    except Exception:
        counts.function_errors += 1
        return None
    return dict(response)


@dataclass
class StreamShard:
    """One table's stream records in order, and the mapping's checkpoint in it."""

    records: list[dict[str, Any]]
    checkpoint: int = 0
    attempts: int = 0
    #: After a function error Lambda bisects the batch (BisectBatchOnFunctionError in the template).
    bisected_size: int | None = None

    @property
    def done(self) -> bool:
        return self.checkpoint >= len(self.records)

    def deliver(
        self, consumer: Handler, rng: random.Random, faults: FaultInjector, counts: Invocations
    ) -> None:
        """Invoke the next batch (sometimes the previous one again) and move the checkpoint."""
        size = self.bisected_size or rng.randint(1, 40)
        start = self.checkpoint
        if start > 0 and rng.random() < 0.1:  # at least once: an earlier range again
            start = rng.randrange(0, start)
            counts.redeliveries += 1
        batch = self.records[start : start + size]
        counts.stream_invocations += 1
        response = invoke(consumer, {"Records": batch}, faults, counts)
        if response is None:
            self.bisected_size = max(1, len(batch) // 2)
            self._failed_attempt(start)
            return
        failures = response.get("batchItemFailures") or []
        if not failures:
            self.checkpoint = max(self.checkpoint, start + len(batch))
            self.attempts, self.bisected_size = 0, None
            return
        counts.partial_failures += 1
        (failure,) = failures
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in batch]
        failed_at = start + sequence_numbers.index(failure["itemIdentifier"])
        self.checkpoint = max(self.checkpoint, failed_at)
        self._failed_attempt(failed_at)

    def _failed_attempt(self, start: int) -> None:
        """The checkpoint stays; Lambda retries from it."""
        self.attempts += 1
        assert self.attempts < MAX_STREAM_ATTEMPTS, f"stream batch at {start} never succeeded"


@dataclass
class QueuePoller:
    """The SQS event source mapping of ChangeQueue."""

    stack: Stack
    undeleted: set[str] = field(default_factory=set)

    def poll(
        self, aggregator: Handler, rng: random.Random, faults: FaultInjector, counts: Invocations
    ) -> bool:
        """Receive, invoke and settle one batch; False when the queue had nothing visible."""
        messages = self.stack.sqs.receive_message(
            QueueUrl=self.stack.queue_url,
            MaxNumberOfMessages=rng.randint(1, 10),
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        rng.shuffle(messages)
        counts.queue_invocations += 1
        response = invoke(aggregator, sqs_event(messages), faults, counts)
        failed = (
            {message["MessageId"] for message in messages}
            if response is None
            else {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
        )
        if response is not None and failed:
            counts.partial_failures += 1
        for message in messages:
            if message["MessageId"] in failed:
                self._visible_again(message)
            elif rng.random() < 0.05:  # the delete got lost: SQS delivers it again
                counts.redeliveries += 1
                self._visible_again(message)
            else:
                self.stack.sqs.delete_message(
                    QueueUrl=self.stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return True

    def _visible_again(self, message: dict[str, Any]) -> None:
        self.stack.sqs.change_message_visibility(
            QueueUrl=self.stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

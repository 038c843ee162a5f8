"""Where the stream consumer's CPU goes, per record: ``python -m bench.studies.consumer_profile``.

On the bench's 5,000 realistic changes in batches of 1,000: parsing the Lambda event (every
consumer pays it), ``to_change_line`` (conversion, of which ``item_text`` of the images), packing
(zlib at ``COMPRESSION_LEVEL``, of which base64), and the SQS client (a real botocore client whose
HTTP layer answers in memory). Each stage timed alone, best of 7 CPU runs.
"""

from __future__ import annotations

import base64
import json
import zlib

from bench.support.fakes import FakeSqsClient, recording_sqs_client
from bench.support.inputs import QUEUE_URL, stream_records
from bench.support.template import MAX_MESSAGE_BYTES
from bench.support.timing import best_of

RECORDS = 5_000


def main() -> None:
    from changelake.formats.change_line import to_change_line
    from changelake.formats.dynamodb_json import item_text
    from changelake.formats.envelope import COMPRESSION_LEVEL, MessagePacker, PackedMessage
    from changelake.integrations.base import OutboundMessage
    from changelake.integrations.sqs import SqsQueue, request_batches

    records = stream_records(RECORDS)
    events = [json.dumps({"Records": records[start : start + 1000]}) for start in range(0, RECORDS, 1000)]
    streams = [record["dynamodb"] for record in records]
    names = ("Keys", "NewImage", "OldImage")
    images = [stream[name] for stream in streams for name in names if name in stream]
    lines = [to_change_line(record).line for record in records]

    def pack() -> list[PackedMessage]:
        out: list[PackedMessage] = []
        for start in range(0, RECORDS, 1000):
            packed = MessagePacker(MAX_MESSAGE_BYTES).pack(enumerate(lines[start : start + 1000]))
            out += [message for message in packed if isinstance(message, PackedMessage)]
        return out

    compressed = zlib.compress(b"".join(line + b"\n" for line in lines), COMPRESSION_LEVEL)
    queue = SqsQueue(QUEUE_URL, client=recording_sqs_client(FakeSqsClient(keep_bodies=False)))
    messages = [OutboundMessage(f"m{index}", message.body) for index, message in enumerate(pack())]

    def send() -> None:
        for batch in request_batches(messages):
            queue.send_batch(batch)

    stages = {
        "json.loads of the event (all consumers)": lambda: [json.loads(text) for text in events],
        "to_change_line (whole line)": lambda: [to_change_line(record) for record in records],
        "  of which item_text (the images)": lambda: [item_text("image", image) for image in images],
        f"pack: MessagePacker, zlib level {COMPRESSION_LEVEL}": pack,
        "  of which base64 of the gzip": lambda: base64.b64encode(compressed).decode("ascii"),
        f"SQS client ({len(messages)} bodies, botocore, in-memory HTTP)": send,
    }
    send()  # warm up the client
    for name, work in stages.items():
        print(f"{name:58s} {best_of(work, 7).cpu / RECORDS * 1e6:6.1f} us/record")


if __name__ == "__main__":
    main()

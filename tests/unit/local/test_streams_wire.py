"""DynamoDB Streams over raw HTTP: the service's JSON as it is, retried on a dropped answer or a 5xx."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from changelake_local.errors import LocalRunError
from changelake_local.streams_wire import StreamsWire


class Streams(BaseHTTPRequestHandler):
    """Answers each request with the next status of ``statuses`` and echoes the request."""

    statuses: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[str, dict[str, object]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.headers["X-Amz-Target"], body))
        status = self.statuses.pop(0) if self.statuses else 200
        answer = json.dumps({"Records": [{"dynamodb": {"Keys": {"pk": {"B": "AAE="}}}}]}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Streams)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Streams.seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_get_records_answers_the_service_json_after_retrying_a_5xx(endpoint: str) -> None:
    # GIVEN an endpoint that answers 503 once, then the records
    Streams.statuses = [503]
    wire = StreamsWire(endpoint)
    # WHEN GetRecords is called
    try:
        answer = wire.call("GetRecords", {"ShardIterator": "it", "Limit": 1000})
    finally:
        wire.close()
    # THEN the records come back as the service's JSON (binary still base64), after one retry
    assert answer == {"Records": [{"dynamodb": {"Keys": {"pk": {"B": "AAE="}}}}]}
    assert (
        Streams.seen == [("DynamoDBStreams_20120810.GetRecords", {"ShardIterator": "it", "Limit": 1000})] * 2
    )


def test_a_refusal_is_not_retried_and_names_the_operation(endpoint: str) -> None:
    # GIVEN an endpoint that refuses the request (a 4xx)
    Streams.statuses = [400]
    wire = StreamsWire(endpoint)
    # WHEN GetRecords is called THEN it fails at once, naming the operation and the status
    with pytest.raises(LocalRunError, match="GetRecords answered HTTP 400"):
        wire.call("GetRecords", {"ShardIterator": "it"})
    wire.close()
    assert len(Streams.seen) == 1


def test_only_an_http_endpoint_is_accepted() -> None:
    with pytest.raises(LocalRunError, match="must be an http:// URL"):
        StreamsWire("https://streams.dynamodb.us-east-1.amazonaws.com")

"""DynamoDB Streams over raw HTTP for the local stream mapping: the service's JSON as it is."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from changelake_local.endpoint import REGION
from changelake_local.errors import LocalRunError


class StreamsWire:
    """DynamoDB Streams calls over one keep-alive HTTP connection, answered as the service's JSON.

    GetRecords through boto3 parses every attribute of every image against the service model and
    the mapping then turned bytes back into base64 for the Lambda event: a quarter of the runner's
    time at 300 changes/s. The JSON on the wire already is what Lambda delivers, so the mapping
    reads it as it is. (The local endpoint checks no signature; the credential scope routes it.)
    """

    TARGET = "DynamoDBStreams_20120810"

    def __init__(self, endpoint: str, *, attempts: int = 3, timeout: float = 60.0) -> None:
        parsed = urlsplit(endpoint)
        if parsed.scheme != "http" or parsed.hostname is None:
            raise LocalRunError(f"the local endpoint must be an http:// URL, not {endpoint!r}")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.attempts = attempts
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"{self.TARGET}.{operation}",
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=testing/20240101/{REGION}/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
        }
        for attempt in range(1, self.attempts + 1):
            connection = self._connection or http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
            try:
                connection.request("POST", "/", body, headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                self._connection = None
                if attempt == self.attempts:
                    raise
                time.sleep(0.1 * attempt)
                continue
            self._connection = None if response.will_close else connection
            if response.status == 200:
                return dict(json.loads(data))
            if response.status < 500 or attempt == self.attempts:
                raise LocalRunError(
                    f"DynamoDB Streams {operation} answered HTTP {response.status}: {data[:300]!r}"
                )
            time.sleep(0.1 * attempt)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

"""``python -m changelake_local.moto_server -H HOST -p PORT``: moto's server app, served faster.

The same WSGI application as ``python -m moto.server`` (moto's DomainDispatcherApplication and
request handler), with three changes that a profile of ``make run`` pointed at (py-spy on the moto
child at 300 changes/s: about a third of its time went to these, none of it to AWS semantics):

- keep-alive: werkzeug's development server closes every connection after one response (and then
  polls the socket for 10 ms), so each boto3 call opened a new TCP connection and the server a new
  thread. Requests with a Content-Length are answered with one and the connection stays open;
  anything else (a chunked request body) goes through werkzeug's own path, which closes it.
- no access log: one log line per request, written under the logging lock, cost 14 % of moto's time.
- GetRecords is written with moto's own DynamoDB JSON encoder (``dynamo_json_dump``: timestamps as
  epoch seconds, binary as base64, exactly the wire format) instead of moto's generic response
  serializer, which walks every attribute of every image against the botocore shape model: with
  the load generator batching its writes that walk was half of moto's time, and the stream reader
  fell behind the writes.
- the backend lookup is memoised: moto lists its own package directory (``os.listdir`` and an
  ``isdir`` per service, about 200 stats) under a global lock on every request to map a host to a
  backend; the answer for a host never changes while the server runs.

With ``--lambda-invoke-url`` (the endpoint always passes it) the template's state machines run
on moto's ASL interpreter and their Lambda tasks reach the parent's functions
(``changelake_local.step_functions``).

And one place where moto departs from S3 (``behave_like_s3``, applied by the test suite's moto
server too): CompleteMultipartUpload of an upload that no longer exists. And DynamoDB exports
written and described as AWS does (``changelake_local.exports.emulate_exports``).
"""

from __future__ import annotations

import argparse
import io
import signal
import socket
import sys
import traceback
from functools import lru_cache
from typing import Any

from moto.cloudformation.models import Stack as FakeStack
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.exceptions import NoSuchUpload
from moto.s3.models import S3Backend
from werkzeug.serving import ThreadedWSGIServer

from changelake_local import step_functions
from changelake_local.exports import emulate_exports


def _get_records(self: DynamoDBStreamsHandler) -> str:
    """moto's DynamoDBStreamsHandler.get_records, the result encoded by ``dynamo_json_dump``."""
    limit = self._get_param("Limit")
    result = self.backend.get_records(self._get_param("ShardIterator"), 1000 if limit is None else limit)
    return dynamo_json_dump(result)


_MOTO_COMPLETE_MULTIPART_UPLOAD = S3Backend.complete_multipart_upload


def _complete_multipart_upload(self: S3Backend, bucket_name: str, multipart_id: str, body: Any) -> Any:
    """moto's, except that an upload ID it does not know is ``NoSuchUpload`` (404), as on S3.

    moto 5.2.5 looks the upload up with ``bucket.multiparts[multipart_id]``: an aborted (or
    already completed) upload raises KeyError, which its server answers with a bare 500. Our
    publication relies on S3's answer (``Publication._complete``: a missing upload whose object
    does not exist is ``lost``, and the partition is rebuilt); a 500 is retried and then fails the
    partition on every later run. It happened in the property test when a manifest commit's answer
    was lost: the run aborted the uploads the (stored) manifest names. AbortMultipartUpload in moto
    already answers NoSuchUpload.
    """
    if multipart_id not in self.get_bucket(bucket_name).multiparts:
        raise NoSuchUpload(upload_id=multipart_id)
    return _MOTO_COMPLETE_MULTIPART_UPLOAD(self, bucket_name, multipart_id, body)


def _parameter_list(self: FakeStack) -> list[dict[str, Any]]:
    """moto's, except that a list parameter (``CommaDelimitedList``) is given back comma-separated,
    as CloudFormation's DescribeStacks does (moto 5 answers Python's ``repr`` of the list)."""
    return [
        {**parameter, "ParameterValue": ",".join(map(str, parameter["ParameterValue"]))}
        if isinstance(parameter["ParameterValue"], list)
        else parameter
        for parameter in _MOTO_PARAMETER_LIST.fget(self)  # type: ignore[attr-defined]
    ]


_MOTO_PARAMETER_LIST = FakeStack.parameter_list


def behave_like_s3() -> None:
    """Patch moto (in this process) where it departs from AWS in a way our code meets: S3's
    CompleteMultipartUpload, DynamoDB's exports, CloudFormation's list parameters."""
    S3Backend.complete_multipart_upload = _complete_multipart_upload  # type: ignore[method-assign]
    FakeStack.parameter_list = property(_parameter_list)  # type: ignore[assignment,method-assign]
    emulate_exports()


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher with the host -> backend mapping memoised."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backend_for_host = lru_cache(maxsize=1024)(super().get_backend_for_host)

    def get_backend_for_host(self, host: str | None) -> Any:
        return self._backend_for_host(host)


class ReusableAddressServer(ThreadedWSGIServer):
    """werkzeug's threaded server (what ``make_server(threaded=True)`` builds), binding with
    SO_REUSEADDR: stopping it leaves its connections in TIME_WAIT for a minute, and the next run
    must be able to listen on the same port at once. http.server sets this today; we say it here
    so that the endpoint's port check (which binds the same way) and the server cannot drift."""

    allow_reuse_address = True


class KeepAliveHandler(MotoRequestHandler):
    """HTTP/1.1 keep-alive for requests with a known length; no per-request log line."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes; without this, Nagle + delayed ACK add 40 ms each
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (self.command in ("POST", "PUT") and length is None):
            self.close_connection = True
            super().run_wsgi()  # werkzeug's path: it closes the connection after the response
            return
        body = self.rfile.read(int(length)) if length else b""
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
        status: list[str] = []
        headers: list[tuple[str, str]] = []

        chunks: list[bytes] = []

        def start_response(status_text: str, response_headers: list[tuple[str, str]], *_: Any) -> Any:
            status[:] = [status_text]
            headers[:] = list(response_headers)
            return chunks.append

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception:  # noqa: BLE001 - as werkzeug: a 500, the traceback logged, the connection closed
            traceback.print_exc()
            self.close_connection = True
            status[:], headers[:], chunks[:] = ["500 Internal Server Error"], [], [b"Internal Server Error"]
        payload = b"".join(chunks)
        code, _, message = status[0].partition(" ")
        self.send_response(int(code), message)
        head = self.command == "HEAD"  # HEAD keeps the application's Content-Length (the object's)
        for name, value in headers:
            if name.lower() in ("connection", "transfer-encoding") or (
                name.lower() == "content-length" and not head
            ):
                continue
            self.send_header(name, value)
        if not head or not any(name.lower() == "content-length" for name, _ in headers):
            self.send_header("Content-Length", str(0 if head else len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and payload:
            self.wfile.write(payload)
        self.wfile.flush()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m changelake_local.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--lambda-invoke-url", help="the parent's invoke server (invoke_server.py)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    DynamoDBStreamsHandler.get_records = _get_records  # type: ignore[assignment,method-assign]
    behave_like_s3()
    if args.lambda_invoke_url:
        step_functions.enable(args.lambda_invoke_url, args.port)
    server = ReusableAddressServer(args.host, args.port, CachedDispatcher(), handler=KeepAliveHandler)
    server.serve_forever()


if __name__ == "__main__":
    main()

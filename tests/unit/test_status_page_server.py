"""The status page's server answers every request: 4xx with a JSON reason for bad input, 500 with a JSON
error for a bug (its traceback logged), never a connection closed without a word."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from changelake_cli.lake import LakeStore
from changelake_cli.stack import Aws, StackInfo, Target
from changelake_cli.status import Operator
from changelake_cli.web import server
from changelake_cli.web.server import MAX_BODY, TOKEN_HEADER, PageApp, make_server

RUN = "/api/pipeline/run"


class FakeS3:
    """The bucket's S3 client: the table ``orders`` in raw/ and nothing else; with a ``bug``, every
    listing raises it (what no adapter maps: not a botocore error)."""

    bug: type[Exception] | None = None

    def list_objects_v2(self, **request: Any) -> dict[str, Any]:
        if self.bug is not None:
            raise self.bug("injected bug in list_objects_v2")
        if request == {"Bucket": "bucket", "Prefix": "raw/", "Delimiter": "/"}:
            return {"CommonPrefixes": [{"Prefix": "raw/orders/"}]}
        return {}


def never_invoked(logical_id: str, function_name: str, event: dict[str, Any]) -> tuple[Any, str | None]:
    raise AssertionError(f"{logical_id} invoked with {event} by a request that should be refused")


@dataclass
class Answer:
    status: int
    content_type: str | None
    body: bytes

    def error(self) -> str:
        assert self.content_type == "application/json", self.body
        document = json.loads(self.body)
        assert isinstance(document["error"], str)
        return document["error"]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[PageApp]:
    """The page server on a free port, for a stack whose bucket holds the table ``orders``."""
    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 1, raising=False)  # raising: the old server had none
    target = Target("changelake", region="us-east-1", endpoint="http://127.0.0.1:9")
    aws = Aws(
        target,
        session_factory=lambda **kw: boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", **kw
        ),
    )
    stack = StackInfo("changelake", "us-east-1", "CREATE_COMPLETE", {}, {}, {"DataBucket": "bucket"})
    operator = Operator(aws, stack, _store=LakeStore("bucket", client=FakeS3()))
    app = PageApp(operator, never_invoked)
    httpd = make_server(app, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app
    httpd.shutdown()
    httpd.server_close()


def raw(app: PageApp, request: bytes, *, close_after: bool = True) -> Answer:
    """``request`` as bytes on a socket (``close_after``: then no more from us), and the answer."""
    with socket.create_connection(("127.0.0.1", app.port), timeout=30) as sock:
        sock.sendall(request)
        if close_after:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock, method=request.split(b" ", 1)[0].decode())
        response.begin()
        return Answer(response.status, response.getheader("Content-Type"), response.read())


def post(app: PageApp, headers: dict[str, str], body: bytes = b"", *, close_after: bool = True) -> Answer:
    lines = [f"POST {RUN} HTTP/1.1", f"Host: 127.0.0.1:{app.port}", f"{TOKEN_HEADER}: {app.token}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return raw(app, head.encode("latin-1") + body, close_after=close_after)  # header bytes are Latin-1


def get(app: PageApp, path: str, method: str = "GET") -> Answer:
    return raw(app, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n\r\n".encode())


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [
        ("x", 400, "Content-Length must be a count of bytes, not 'x'"),
        ("-1", 400, "not '-1'"),
        ("²", 400, "not '²'"),
        ("1_0", 400, "not '1_0'"),
        (str(MAX_BODY + 1), 413, f"{MAX_BODY} bytes or less"),
        ("9" * 5000, 413, f"{MAX_BODY} bytes or less"),
    ],
)
def test_a_content_length_that_is_not_a_small_count_of_bytes_is_refused(
    page: PageApp, length: str, status: int, reason: str
) -> None:
    # GIVEN a run request with a Content-Length that is no count, or too large
    # WHEN it reaches the server  THEN it is answered, with the reason as JSON
    answer = post(page, {"Content-Length": length}, b"{}")
    assert answer.status == status
    assert reason in answer.error()


def test_a_content_length_with_leading_zeros_is_its_number(page: PageApp) -> None:
    body = b'{"kind": "backup", "table": "orders", "dt": "2026-11-20"}'
    answer = post(page, {"Content-Length": "0" * 5000 + str(len(body))}, body)
    assert (answer.status, answer.error()) == (400, "'kind' must be 'compaction' or 'snapshot'")


def test_a_post_without_content_length_is_refused(page: PageApp) -> None:
    answer = post(page, {})
    assert (answer.status, answer.error()) == (411, "a POST needs a Content-Length header")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "the request body must be JSON"),
        (b"\xff\xfe", "the request body must be JSON"),
        (b"[" * 2000, "the request body must be JSON"),  # deeper than Python's recursion limit
        (b'["compaction"]', "the request body must be a JSON object"),
        (b'{"kind": "compaction", "table": 1, "dt": "2026-01-01"}', "a run needs 'table' and 'dt'"),
        (
            b'{"kind": "compaction", "table": "t", "dt": "2026-01-01", "hour": 5}',
            "'hour' must be two digits 00 to 23 or null, not 5",
        ),
    ],
)
def test_a_body_that_is_not_a_run_request_is_refused(page: PageApp, body: bytes, reason: str) -> None:
    answer = post(page, {"Content-Length": str(len(body))}, body)
    assert answer.status == 400
    assert reason in answer.error()


@pytest.mark.parametrize("hour", ["١٢", "²³", "24", "7", "007"])
def test_a_run_of_an_hour_that_is_not_two_ascii_digits_is_refused(page: PageApp, hour: str) -> None:
    # GIVEN a compaction of an hour that only looks like one (Arabic-Indic digits, superscripts, ...)
    body = json.dumps({"kind": "compaction", "table": "orders", "dt": "2026-11-20", "hour": hour}).encode()
    # WHEN it is requested  THEN it is refused, and nothing is invoked
    answer = post(page, {"Content-Length": str(len(body))}, body)
    assert answer.status == 400
    assert "--hour must be two digits 00 to 23" in answer.error()


def test_a_body_shorter_than_announced_is_refused(page: PageApp) -> None:
    # GIVEN a body that ends (the client closed its side) before its Content-Length
    answer = post(page, {"Content-Length": "100"}, b'{"kind": "')
    # THEN the answer says so
    assert answer.status == 400
    assert "the body ended after 10 of its 100 bytes" in answer.error()


def test_a_body_that_never_arrives_is_answered_when_the_wait_is_over(page: PageApp) -> None:
    # GIVEN a client that announces 100 bytes, sends 10 and waits
    answer = post(page, {"Content-Length": "100"}, b'{"kind": "', close_after=False)
    # THEN after REQUEST_TIMEOUT it gets an answer rather than holding a thread for good
    assert answer.status == 408
    assert "did not arrive within 1 s" in answer.error()


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/api/pipeline/history?days=%C2%B2", 400, "days must be a number from 1 to 400, not '²'"),
        ("/api/pipeline/history?days=%D9%A1", 400, "days must be a number from 1 to 400"),
        ("/api/pipeline/history?days=-1", 400, "days must be a number from 1 to 400"),
        ("/api/pipeline/history?days=401", 400, "days must be a number from 1 to 400"),
        ("/api/pipeline/history?days=" + "0" * 5000 + "401", 400, "days must be a number from 1 to 400"),
        ("/api/pipeline/history?days=", 400, "days must be a number from 1 to 400, not ''"),
        ("/api/pipeline/history?days=7&days=8", 400, "each parameter once, not days twice or more"),
        ("/api/pipeline/download?table=t&dt=2026-01-01&hour=%C2%B2%C2%B3", 400, "--hour must be two digits"),
        ("http://[/api/pipeline/status", 400, "not a URL"),
        ("/api/pipeline/nope", 404, "no such page: /api/pipeline/nope"),
    ],
)
def test_bad_parameters_and_unknown_pages_are_answered(
    page: PageApp, path: str, status: int, reason: str
) -> None:
    answer = get(page, path)
    assert answer.status == status
    assert reason in answer.error()


def test_good_parameters_are_answered(page: PageApp) -> None:
    # GIVEN the history of a week, its days written with leading zeros, of the table the lake has
    answer = get(page, "/api/pipeline/history?days=0007&table=orders")
    # THEN it is answered: no runs yet
    assert (answer.status, json.loads(answer.body)) == (200, [])


def test_a_post_to_another_page_is_not_found(page: PageApp) -> None:
    request = (
        f"POST /api/pipeline/status HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\nContent-Length: 0\r\n\r\n"
    )
    answer = raw(page, request.encode())
    assert (answer.status, answer.error()) == (404, "no such page: /api/pipeline/status")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_answered_as_json(page: PageApp, method: str) -> None:
    answer = get(page, "/", method)
    assert answer.status == 501
    assert method in answer.error()


def test_a_head_request_gets_the_status_without_a_body(page: PageApp) -> None:
    answer = get(page, "/", "HEAD")
    assert (answer.status, answer.body) == (501, b"")


def test_a_request_the_standard_library_cannot_read_is_answered_as_json(page: PageApp) -> None:
    # GIVEN more header lines than http.server reads (100)
    headers = "".join(f"X-Filler-{n}: {n}\r\n" for n in range(101))
    answer = raw(page, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\n{headers}\r\n".encode())
    # THEN its refusal is JSON like every other
    assert answer.status == 431
    assert "Too many headers" in answer.error()


@pytest.mark.parametrize("bug", [RuntimeError, KeyError])  # a KeyError was once answered 404
def test_a_bug_is_answered_500_and_its_traceback_logged(
    page: PageApp, caplog: pytest.LogCaptureFixture, bug: type[Exception]
) -> None:
    # GIVEN a bucket whose reads raise what no adapter expects (a bug)
    page.operator.store.client.bug = bug
    caplog.set_level(logging.ERROR, logger=server.__name__)
    # WHEN the page asks for the latest runs
    answer = get(page, "/api/pipeline/latest")
    # THEN the answer is a 500 with the error as JSON, and the traceback is in the log
    assert answer.status == 500
    assert f"{bug.__name__}: " in answer.error()
    assert "injected bug in list_objects_v2" in answer.error()
    (logged,) = [r for r in caplog.records if r.name == server.__name__]
    assert logged.exc_info is not None
    assert "GET /api/pipeline/latest failed" in logged.getMessage()
    assert "Traceback" in caplog.text
    assert "injected bug in" in caplog.text

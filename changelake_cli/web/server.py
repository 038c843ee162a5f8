"""``changelake ui``: the status page and its JSON endpoints, on 127.0.0.1 only.

The page is one static HTML file (page.html: no build step) that reads the endpoints below, which
return exactly what the command prints with ``--json`` (the same functions build both):

    GET  /api/pipeline/status     ``changelake status --json``
    GET  /api/pipeline/latest     the newest run of each kind and the last change per table
    GET  /api/pipeline/history    ``changelake history --json`` (?days=N&table=T)
    GET  /api/pipeline/settings   the stack's settings (bucket, functions, schedules, parameters)
    GET  /api/pipeline/download   one partition as a file (?layer=&table=&dt=&hour=)
    POST /api/pipeline/run        run a compaction or a snapshot now: {"kind", "table", "dt", "hour"?}

A POST must carry the header ``X-Changelake-Token`` with the token the page was served with: another
site can neither read the page (no CORS headers) nor set that header on a cross-site request. Every
request must name this server in its Host header (127.0.0.1 or localhost), which defeats DNS
rebinding. Scripts read the token from the page (``<meta name="changelake-token">``).

Every request gets an answer, a JSON object ``{"error": ...}`` when it is not a success: 400 for
bad input (a parameter, the body), 403, 404, 408 (a body announced and not sent), 411, 413, 502
(the stack cannot be reached), 501 (a method other than GET and POST, or a request the standard
library cannot parse), and 500 for a bug, whose traceback goes to the log (stderr of ``changelake ui``).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

from changelake.exceptions import DeliveryError
from changelake_cli import invoke as invocations
from changelake_cli.download import partition_ref, stream_partition
from changelake_cli.errors import UnreachableError, UsageError
from changelake_cli.output import jsonable
from changelake_cli.status import Operator, collect_status, history, latest, settings

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Changelake-Token"  # noqa: S105 - a header name, not a secret
#: The page's own inline script and style only; nothing from elsewhere, and no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "frame-ancestors 'none'"
)
#: Largest POST body read (a run request is a few dozen bytes).
MAX_BODY = 4096
#: Seconds a connection may be silent while its request is read or its answer written: a client
#: that announces a body and never sends it would otherwise hold its thread for good.
REQUEST_TIMEOUT = 30
#: A number as HTTP and URLs write it: ASCII digits (``int`` also takes "-1", " 7", "1_0", Arabic-Indic
#: digits, and refuses more than 4300 digits; ``str.isdigit`` takes "²", which ``int`` refuses).
_DIGITS = re.compile(r"[0-9]+\Z")
LOG = logging.getLogger(__name__)


class RequestError(Exception):
    """A request this server refuses: the status and the reason it answers with."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PageApp:
    """What the handler needs: the operator, the invoker, the token; one run at a time."""

    def __init__(self, operator: Operator, invoker: invocations.Invoker, token: str | None = None) -> None:
        self.operator = operator
        self.invoker = invoker
        self.token = token or secrets.token_urlsafe(32)
        self.port = 0
        self._run_lock = threading.Lock()

    def page(self) -> bytes:
        template = Template(resources.files("changelake_cli.web").joinpath("page.html").read_text("utf-8"))
        stack = self.operator.stack
        return template.substitute(
            token=self.token, stack=_html(stack.name), title=_html(f"changelake: {stack.name}")
        ).encode()

    def get(self, path: str, query: dict[str, str]) -> Any:
        """What a GET of ``path`` answers (the JSON endpoints)."""
        operator = self.operator
        if path == "/api/pipeline/status":
            return collect_status(operator)
        if path == "/api/pipeline/latest":
            return latest(operator)
        if path == "/api/pipeline/settings":
            return settings(operator)
        if path == "/api/pipeline/history":
            days = _int(query.get("days", "7"), "days")
            table = query.get("table") or None
            if table is not None:
                operator.check_table(table)
            return history(operator, days=days, table=table)
        raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def run(self, request: dict[str, Any]) -> invocations.Invocation:
        kind, table, dt = request.get("kind"), request.get("table"), request.get("dt")
        if not isinstance(table, str) or not isinstance(dt, str):
            raise UsageError("a run needs 'table' and 'dt' (YYYY-MM-DD)")
        hour = request.get("hour") or None
        if hour is not None and not isinstance(hour, str):
            raise UsageError(f"'hour' must be two digits 00 to 23 or null, not {hour!r}")
        if kind == "compaction":
            logical_id, event = (
                "CompactionFunction",
                invocations.compaction_event(self.operator, table, dt, hour),
            )
        elif kind == "snapshot":
            logical_id = "SnapshotFunction"
            self.operator.stack.function(logical_id)
            event = invocations.snapshot_event(self.operator, table, dt, None)
        else:
            raise UsageError("'kind' must be 'compaction' or 'snapshot'")
        with self._run_lock:
            return invocations.invoke(self.operator, self.invoker, logical_id, event)

    def allowed_host(self, host: str | None) -> bool:
        return host in (f"{HOST}:{self.port}", f"localhost:{self.port}")

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _digits(text: str) -> str | None:
    """``text`` without leading zeros if it is ASCII digits (short enough for ``int``), else None."""
    return (text.lstrip("0") or "0") if _DIGITS.match(text) else None


def _int(text: str, name: str) -> int:
    digits = _digits(text)
    if digits is None or len(digits) > 3 or not 1 <= int(digits) <= 400:
        raise UsageError(f"{name} must be a number from 1 to 400, not {text!r}")
    return int(digits)


def _query(text: str) -> dict[str, str]:
    """A URL's query as one value per name; a name given twice is refused (which one was meant?)."""
    given = parse_qs(text, keep_blank_values=True)
    repeated = sorted(name for name, values in given.items() if len(values) > 1)
    if repeated:
        raise UsageError(f"each parameter once, not {', '.join(repeated)} twice or more")
    return {name: values[0] for name, values in given.items()}


def _content_length(header: str | None) -> int:
    if header is None:
        raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length header")
    digits = _digits(header)
    if digits is None:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length must be a count of bytes, not {header!r}")
    if len(digits) > len(str(MAX_BODY)) or int(digits) > MAX_BODY:
        raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body must be {MAX_BODY} bytes or less")
    return int(digits)


def _run_request(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: arrays nested a thousand deep
        raise UsageError("the request body must be JSON") from None
    if not isinstance(request, dict):
        raise UsageError("the request body must be a JSON object")
    return request


def handler_for(app: PageApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "changelake"
        timeout = REQUEST_TIMEOUT
        #: Whether this request's answer has begun (after which no other can be sent).
        answered = False

        def log_message(self, format: str, *args: Any) -> None:
            return  # no access log on the terminal; errors are answered as JSON, bugs logged by _guarded

        def _send(
            self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
        ) -> None:
            self.answered = True
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(jsonable(value), allow_nan=False).encode(), "application/json")

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """The standard library's own refusals (a request line or header it cannot parse, a
            method with no ``do_`` here) as JSON too."""
            self.close_connection = True
            self._json(code, {"error": message or HTTPStatus(code).phrase})

        def _guarded(self, action: Callable[[], None]) -> None:
            self.answered = False
            try:
                self._check_host()
                action()
            except RequestError as exc:
                self._refuse(exc.status, {"error": exc.reason})
            except UsageError as exc:
                self._refuse(HTTPStatus.BAD_REQUEST, {"error": exc.message, "exit_code": int(exc.exit_code)})
            except UnreachableError as exc:
                self._refuse(HTTPStatus.BAD_GATEWAY, {"error": exc.message, "exit_code": int(exc.exit_code)})
            except DeliveryError as exc:
                self._refuse(HTTPStatus.BAD_GATEWAY, {"error": f"cannot reach the stack: {exc}"})
            except Exception as exc:  # a bug: answered 500, its traceback logged
                LOG.exception("changelake ui: %s %s failed", self.command, self.path)
                self._refuse(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"error": f"internal error ({type(exc).__name__}: {exc}); the traceback is in the log"},
                )

        def _check_host(self) -> None:
            if not app.allowed_host(self.headers.get("Host")):
                refusal = "this server answers only to 127.0.0.1 and localhost"
                raise RequestError(HTTPStatus.FORBIDDEN, refusal)

        def _refuse(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            if self.answered:  # the answer began (the client went away while it was written, ...)
                LOG.warning("changelake ui: %s %s: %s after the answer began", self.command, self.path, body)
                self.close_connection = True
                return
            self._json(status, body)

        def do_GET(self) -> None:
            self._guarded(self._get)

        def do_POST(self) -> None:
            self._guarded(self._post)

        def _url(self) -> tuple[str, dict[str, str]]:
            try:
                url = urlsplit(self.path)
            except ValueError as exc:  # "http://[" and the like
                raise UsageError(f"not a URL: {self.path!r} ({exc})") from None
            return url.path, _query(url.query)

        def _get(self) -> None:
            path, query = self._url()
            if path in ("/", "/index.html"):
                self._send(
                    HTTPStatus.OK,
                    app.page(),
                    "text/html; charset=utf-8",
                    {"Content-Security-Policy": CONTENT_SECURITY_POLICY},
                )
            elif path == "/api/pipeline/download":
                self._download(query)
            else:
                self._json(HTTPStatus.OK, app.get(path, query))

        def _download(self, query: dict[str, str]) -> None:
            ref = partition_ref(
                app.operator,
                query.get("layer", "compacted"),
                query.get("table", ""),
                query.get("dt", ""),
                query.get("hour") or None,
            )
            body = b"".join(stream_partition(app.operator.store, ref))
            content_type = "application/json" if ref.layer == "snapshot" else "application/gzip"
            disposition = {"Content-Disposition": f'attachment; filename="{ref.file_name}"'}
            self._send(HTTPStatus.OK, body, content_type, disposition)

        def _post(self) -> None:
            path, _query_given = self._url()
            if path != "/api/pipeline/run":
                raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
            if not app.token_ok(self.headers.get(TOKEN_HEADER)):
                raise RequestError(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER}")
            self._json(HTTPStatus.OK, app.run(_run_request(self._body())))

        def _body(self) -> bytes:
            length = _content_length(self.headers.get("Content-Length"))
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                raise RequestError(
                    HTTPStatus.REQUEST_TIMEOUT, f"the body did not arrive within {REQUEST_TIMEOUT} s"
                ) from None
            if len(body) < length:
                raise UsageError(f"the body ended after {len(body)} of its {length} bytes")
            return bytes(body)

    return Handler


def make_server(app: PageApp, port: int) -> ThreadingHTTPServer:
    """The server bound to 127.0.0.1:``port`` (0: any free port; ``app.port`` tells which)."""
    server = ThreadingHTTPServer((HOST, port), handler_for(app))
    server.daemon_threads = True
    app.port = int(server.server_address[1])
    return server


def serve(
    operator: Operator, invoker: invocations.Invoker, *, port: int, announce: Callable[[str], None]
) -> None:
    """Serve until Ctrl-C."""
    app = PageApp(operator, invoker)
    try:
        server = make_server(app, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {HOST}:{port}: {exc.strerror}; choose another --port") from exc
    announce(
        f"changelake status page for stack {operator.stack.name}: http://{HOST}:{app.port}/ (Ctrl-C stops it)"
    )
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            announce("stopped")

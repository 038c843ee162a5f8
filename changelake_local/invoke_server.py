"""The parent's side of Lambda invocations the moto child forwards (changelake_local.step_functions).

A state machine's Lambda task runs in the moto child (moto's ASL interpreter), our functions in this
process. ``LambdaInvokeServer`` listens on 127.0.0.1 (a port of its own, chosen before the child
starts, which gets its URL): ``POST /functions/<name>`` with the invocation's payload runs the
function registered under that name and answers as Lambda's Invoke does: the result as JSON, or a
function error (header ``X-Function-Error: Unhandled``, body ``{"errorType", "errorMessage", ...}``
as the Python runtime writes it, so a state's Retry and Catch match on ``errorType``). A request
Lambda itself would refuse (no such function served, a payload that is not JSON) gets an HTTP
error that the child raises as Lambda's API error.
"""

from __future__ import annotations

import json
import threading
import traceback
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

HOST = "127.0.0.1"


class Invocable(Protocol):
    def invoke(self, event: Any) -> Any: ...


@dataclass(frozen=True)
class InvokeAnswer:
    """What Lambda's Invoke answers: HTTP status, the function error header (if any) and the body."""

    status: int
    body: bytes
    function_error: str | None = None


def function_error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an exception the handler raised."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _api_error(status: int, error_type: str, message: str) -> InvokeAnswer:
    return InvokeAnswer(status, json.dumps({"errorType": error_type, "errorMessage": message}).encode())


def answer_invocation(function: Invocable | None, name: str, payload: bytes) -> InvokeAnswer:
    """Invoke ``function`` (registered as ``name``; None: not served) with ``payload`` as Lambda does."""
    if function is None:
        return _api_error(404, "ResourceNotFoundException", f"the local runner serves no function {name}")
    try:
        event = json.loads(payload or b"{}")
    except ValueError as exc:
        return _api_error(
            400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        )
    request_id = str(uuid.uuid4())
    try:
        result = function.invoke(event)
    except Exception as exc:  # noqa: BLE001 - a function error, answered in Lambda's shape
        body = function_error_payload(exc, request_id)
        return InvokeAnswer(200, json.dumps(body).encode(), function_error="Unhandled")
    try:
        return InvokeAnswer(200, json.dumps(result).encode())
    except (TypeError, ValueError) as exc:  # what the runtime reports for a result it cannot serialize
        body = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}
        return InvokeAnswer(
            200, json.dumps({**body, "requestId": request_id}).encode(), function_error="Unhandled"
        )


@dataclass
class LambdaInvokeServer:
    """An HTTP server on 127.0.0.1 (its own thread) running the functions ``serve`` registers."""

    _functions: dict[str, Invocable] = field(default_factory=dict, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the invoke server is not started")
        return f"http://{HOST}:{self._server.server_address[1]}"

    def serve(self, functions: Mapping[str, Invocable]) -> None:
        """Run ``functions`` (by function name, as Lambda names them) from now on."""
        self._functions.update(functions)

    def start(self) -> LambdaInvokeServer:
        registry = self._functions

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                name = urllib.parse.unquote(self.path.removeprefix("/functions/"))
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = answer_invocation(registry.get(name), name, payload)
                self.send_response(answer.status)
                if answer.function_error:
                    self.send_header("X-Function-Error", answer.function_error)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="lambda-invoke-server", daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

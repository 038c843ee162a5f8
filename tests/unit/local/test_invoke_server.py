"""Lambda invocations answered for the moto child (changelake_local.invoke_server)."""

from __future__ import annotations

import json
from typing import Any

from changelake_local.invoke_server import answer_invocation, function_error_payload


class PieceInterruptedError(Exception):
    pass


class Handler:
    """A function: returns ``result`` for its event, or raises ``error``."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.result, self.error = result, error
        self.events: list[Any] = []

    def invoke(self, event: Any) -> Any:
        self.events.append(event)
        if self.error is not None:
            raise self.error
        return self.result


def test_a_result_is_answered_as_json_without_a_function_error() -> None:
    # GIVEN a function returning a dict
    function = Handler(result={"lines": 3})
    # WHEN invoked with a JSON payload
    answer = answer_invocation(function, "piece", b'{"piece": 1}')
    # THEN it got the event and its result is the body
    assert function.events == [{"piece": 1}]
    assert (answer.status, answer.function_error, json.loads(answer.body)) == (200, None, {"lines": 3})


def test_an_exception_is_a_function_error_in_the_python_runtimes_shape() -> None:
    # GIVEN a function that raises
    function = Handler(error=PieceInterruptedError("piece 2 interrupted"))
    # WHEN invoked
    answer = answer_invocation(function, "piece", b"{}")
    # THEN Lambda's shape: 200, X-Function-Error Unhandled, errorType the class name (what Retry matches)
    body = json.loads(answer.body)
    assert (answer.status, answer.function_error) == (200, "Unhandled")
    assert (body["errorType"], body["errorMessage"]) == ("PieceInterruptedError", "piece 2 interrupted")
    assert body["requestId"]
    assert isinstance(body["stackTrace"], list)


def fail() -> None:
    raise KeyError("missing")


def test_the_error_payload_names_the_exception_and_its_frames() -> None:
    try:
        fail()
    except KeyError as exc:
        payload = function_error_payload(exc, "req-1")
    assert payload["errorType"] == "KeyError"
    assert payload["requestId"] == "req-1"
    assert 'raise KeyError("missing")' in "".join(payload["stackTrace"])


def test_a_result_json_cannot_hold_is_a_marshal_error() -> None:
    answer = answer_invocation(Handler(result={"when": object()}), "piece", b"{}")
    assert answer.function_error == "Unhandled"
    assert json.loads(answer.body)["errorType"] == "Runtime.MarshalError"


def test_an_unserved_function_and_a_payload_that_is_not_json_are_api_errors() -> None:
    # GIVEN no function served under the name, then a payload that is not JSON
    missing = answer_invocation(None, "other", b"{}")
    function = Handler(result=1)
    garbled = answer_invocation(function, "piece", b"{not json")
    # THEN HTTP errors the child raises as Lambda's API errors; the function never ran
    assert (missing.status, json.loads(missing.body)["errorType"]) == (404, "ResourceNotFoundException")
    assert (garbled.status, json.loads(garbled.body)["errorType"]) == (400, "InvalidRequestContentException")
    assert function.events == []

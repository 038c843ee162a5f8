"""Lambda: asynchronous invocations of the stack's own functions."""

from __future__ import annotations

from changelake.integrations.base import AwsAdapter


class LambdaInvoker(AwsAdapter):
    """Queues asynchronous invocations.

    Delivery guarantee of ``invoke_event``: a return means Lambda accepted the event (status 202)
    and will run it with the function's own retries and on-failure destination; any failure raises
    a ``DeliveryError`` and nothing was queued (or, after a lost response, it may run twice: every
    function it targets is idempotent).
    """

    service = "lambda"

    def invoke_event(self, function: str, payload: bytes) -> None:
        """Invoke ``function`` (name or ARN) asynchronously with ``payload`` (JSON bytes)."""
        self._request(
            "invoke", f"lambda:{function}", FunctionName=function, InvocationType="Event", Payload=payload
        )

"""Step Functions: starting the stack's fan-out state machine (``changelake.fan_out``)."""

from __future__ import annotations

import json
from typing import Any

from changelake.exceptions import AlreadyStartedError
from changelake.integrations.base import AwsAdapter


class StateMachine(AwsAdapter):
    """One state machine, by ARN.

    Delivery guarantee of ``start``: a return means an execution of that name runs (or ran) with
    that input: started now, or by an earlier try with the same name (Step Functions keeps a name
    for 90 days, so a retried hand-off never starts a second one). Any other failure raises a
    ``DeliveryError`` and nothing was started.
    """

    service = "stepfunctions"

    def __init__(self, arn: str, *, client: Any = None) -> None:
        super().__init__(client=client)
        self.arn = arn

    @classmethod
    def named(cls, arn: str | None) -> StateMachine | None:
        """The state machine of a function's FAN_OUT_STATE_MACHINE_ARN; None when it has none."""
        return None if arn is None else cls(arn)

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start execution ``name`` with ``payload``; False if it was started already."""
        try:
            self._request(
                "start_execution",
                f"states:{self.arn}/{name}",
                stateMachineArn=self.arn,
                name=name,
                input=json.dumps(payload, sort_keys=True),
            )
        except AlreadyStartedError:
            return False
        return True

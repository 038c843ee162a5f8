"""Functions loaded in this process: where their log lines go."""

from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path

from changelake_local.deployed_stack import FunctionSpec
from changelake_local.functions import LocalFunction

HANDLER = """
import logging, sys
logger = logging.getLogger({service!r})
if not logger.handlers:
    logger.addHandler(logging.StreamHandler(sys.stdout))
logger.setLevel(logging.INFO)

def handler(event, context):
    logger.info("handled %s", event)
    return event
"""


def spec(code_dir: Path, service: str) -> FunctionSpec:
    return FunctionSpec(
        "F", "f", "arn:aws:lambda:us-east-1:123456789012:function:f", code_dir, "app.handler",
        {"POWERTOOLS_SERVICE_NAME": service}, 3, 128,
    )  # fmt: skip


def test_a_second_run_logs_to_its_own_file_after_the_first_runs_file_was_closed(tmp_path: Path) -> None:
    # GIVEN a function whose logger (shared by the process, as Powertools' is) went to a first run's
    # log file, which that run closed when it ended
    service = f"svc-{uuid.uuid4().hex[:8]}"
    (tmp_path / "app.py").write_text(HANDLER.format(service=service))
    with open(tmp_path / "first.log", "w", encoding="utf-8") as first_log:
        LocalFunction(spec(tmp_path, service), log_stream=first_log).load()
    # WHEN a second run in the same process loads the function with its own log file and invokes it
    second_log = io.StringIO()
    function = LocalFunction(spec(tmp_path, service), log_stream=second_log)
    function.load()
    function.invoke({"n": 1})
    # THEN its log line is in the second run's file (the closed one is not flushed)
    assert "handled {'n': 1}" in second_log.getvalue()
    logging.getLogger(service).handlers.clear()

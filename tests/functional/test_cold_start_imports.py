"""A handler's cold start loads only what that handler uses (the timed figures: bench row 8).

Each handler is imported alone in a fresh interpreter, with the environment the tests and
``make invoke`` give it, and ``sys.modules`` is read afterwards: a module that comes back into
a handler's import graph (an eager import of the X-Ray SDK, of Powertools' batch package, of
another function's packages) fails here before it shows up as init time in Lambda.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from changelake_testing.cold_start import HANDLERS, cold_start, handler_module

#: Loaded by no handler: Powertools' batch package (its import pulls in asyncio and the
#: data-class and parser utilities) once stood here for one TypedDict.
NO_HANDLER_NEEDS = ("aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.parser")

#: What each handler has no use for: the other functions' packages, and the JSON Schema compiler
#: when ``SCHEMA_DIR`` is unset (the template's default).
UNUSED = {
    "stream_consumer": (
        "changelake.compaction",
        "changelake.snapshot",
        "changelake.recovery",
        "changelake.ingest.aggregator",
        "changelake.runs",
        "fastjsonschema",
    ),
    "aggregator": (
        "changelake.compaction",
        "changelake.snapshot",
        "changelake.recovery",
        "changelake.ingest.consumer",
        "changelake.ingest.schema",
        "changelake.runs",
        "fastjsonschema",
    ),
    "compaction": ("changelake.ingest", "changelake.snapshot", "changelake.recovery", "fastjsonschema"),
    "snapshot": (
        "changelake.ingest",
        "changelake.recovery",
        "fastjsonschema",
        "duckdb",
        "changelake.snapshot.scan_export",  # only a bootstrap Scan's events need it
    ),  # it records its runs
    "dlq_redrive": (
        "changelake.compaction",
        "changelake.snapshot",
        "changelake.ingest.aggregator",
        "fastjsonschema",
    ),
}


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_cold_start_with_tracing_off_loads_neither_the_xray_sdk_nor_unused_packages(handler: str) -> None:
    # GIVEN a handler's environment with tracing off (POWERTOOLS_TRACE_DISABLED, as in the tests)
    # WHEN its module is imported in a fresh interpreter
    start = cold_start(handler_module(handler))

    # THEN the X-Ray SDK, the batch utilities and the packages the handler does not use stay unloaded
    unwanted = ("aws_xray_sdk", *NO_HANDLER_NEEDS, *UNUSED[handler])
    assert [package for package in unwanted if start.loaded(package)] == []
    # ... and what it does use is there (the check above is not vacuous)
    assert start.loaded("boto3")
    assert start.loaded("aws_lambda_powertools.logging")


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_cold_start_with_tracing_on_patches_botocore_through_xray_as_before(handler: str) -> None:
    # GIVEN a handler's environment as Lambda sets it under Tracing: Active (LAMBDA_TASK_ROOT,
    # no POWERTOOLS_TRACE_DISABLED)
    # WHEN its module is imported in a fresh interpreter
    start = cold_start(handler_module(handler), tracing=True)

    # THEN Powertools' Tracer loaded the X-Ray SDK and patched botocore at cold start, as before
    assert start.loaded("aws_xray_sdk.core")
    assert start.loaded("aws_xray_sdk.ext.botocore")
    # ... and the batch utilities and unused packages still stay out
    unwanted = (*NO_HANDLER_NEEDS, *UNUSED[handler])
    assert [package for package in unwanted if start.loaded(package)] == []


def test_a_schema_directory_loads_the_schema_compiler(tmp_path: Path) -> None:
    # GIVEN the stream consumer with a schema folder (SCHEMA_DIR) holding one schema
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "orders.json").write_text('{"type": "object"}')

    # WHEN its module is imported in a fresh interpreter
    start = cold_start(handler_module("stream_consumer"), extra={"SCHEMA_DIR": str(schemas)})

    # THEN the schemas were compiled at cold start, so fastjsonschema is loaded
    assert start.loaded("fastjsonschema")

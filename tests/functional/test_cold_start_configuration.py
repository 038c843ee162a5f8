"""Missing or malformed environment variables fail at cold start, naming the variable."""

from __future__ import annotations

import pytest

from changelake.exceptions import ConfigurationError
from tests.conftest import HandlerLoader, Stack


@pytest.mark.parametrize(
    ("function", "variable"),
    [
        ("stream_consumer", "QUEUE_URL"),
        ("stream_consumer", "BUCKET_NAME"),
        ("aggregator", "BUCKET_NAME"),
    ],
)
def test_a_missing_variable_fails_the_cold_start_naming_it(
    stack: Stack, load_handler: HandlerLoader, monkeypatch: pytest.MonkeyPatch, function: str, variable: str
) -> None:
    # GIVEN the function's environment without one required variable
    environment = {name: value for name, value in stack.environment.items() if name != variable}
    monkeypatch.delenv(variable, raising=False)

    # WHEN the handler module is imported (a cold start) THEN it fails naming the variable
    with pytest.raises(ConfigurationError, match=variable):
        load_handler(function, environment)


@pytest.mark.parametrize(
    ("function", "variable", "value"),
    [
        ("stream_consumer", "MAX_MESSAGE_BYTES", "abc"),
        ("stream_consumer", "MAX_MESSAGE_BYTES", "512"),
        ("stream_consumer", "MAX_MESSAGE_BYTES", "2000000"),
        ("stream_consumer", "QUEUE_URL", "not-a-url"),
        ("stream_consumer", "QUARANTINE_PREFIX", "../escape"),
        ("stream_consumer", "SCHEMA_DIR", "/does/not/exist"),
        ("aggregator", "RAW_PREFIX", "raw/../x"),
        ("aggregator", "BUCKET_NAME", "Not_A_Bucket"),
    ],
)
def test_a_malformed_variable_fails_the_cold_start_naming_it(
    stack: Stack, load_handler: HandlerLoader, function: str, variable: str, value: str
) -> None:
    # GIVEN the function's environment with one malformed variable
    # WHEN the handler module is imported THEN it fails naming the variable
    with pytest.raises(ConfigurationError, match=variable):
        load_handler(function, stack.environment, **{variable: value})

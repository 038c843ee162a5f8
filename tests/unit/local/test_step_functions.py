"""The pure parts of the moto child's Step Functions patches (changelake_local.step_functions)."""

from __future__ import annotations

import json

import pytest

from changelake_local.step_functions import definition_of, exceeds_tolerated_failures, substitute_definition


def test_definition_substitutions_replace_each_placeholder_as_step_functions_does() -> None:
    # GIVEN a definition as the SAM translator emits it, with a placeholder used twice
    definition = '{"A": {"Resource": "${fn}"}, "B": {"Resource": "${fn}", "On": ${flag}, "N": ${n}}}'
    # WHEN the substitutions are applied
    substituted = substitute_definition(definition, {"fn": "arn:aws:lambda:f", "flag": True, "n": 3})
    # THEN every occurrence is replaced; booleans and numbers by their JSON text
    assert json.loads(substituted) == {
        "A": {"Resource": "arn:aws:lambda:f"},
        "B": {"Resource": "arn:aws:lambda:f", "On": True, "N": 3},
    }


def test_a_definition_without_substitutions_is_unchanged() -> None:
    assert substitute_definition('{"x": "${y}"}', None) == '{"x": "${y}"}'


def test_the_definition_comes_from_definition_string_or_definition() -> None:
    # GIVEN the two inline forms of AWS::StepFunctions::StateMachine
    as_string = {"DefinitionString": '{"F": "${f}"}', "DefinitionSubstitutions": {"f": "arn"}}
    as_object = {"Definition": {"F": "${f}"}, "DefinitionSubstitutions": {"f": "arn"}}
    # THEN both give the substituted definition
    assert json.loads(definition_of(as_string)) == json.loads(definition_of(as_object)) == {"F": "arn"}


def test_a_definition_in_s3_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="DefinitionS3Location is not supported locally"):
        definition_of({"DefinitionS3Location": {"Bucket": "b", "Key": "k"}})


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "fails"),
    [
        (0, 5, 0, 0.0, False),  # nothing failed
        (1, 5, 0, 0.0, True),  # defaults: any failure fails the Map Run
        (2, 5, 2, 0.0, False),  # count only: up to it tolerated
        (3, 5, 2, 0.0, True),
        (1, 10, 0, 10.0, False),  # percentage only: up to it tolerated
        (2, 10, 0, 10.0, True),
        (2, 10, 5, 10.0, True),  # both: exceeding either fails it
        (3, 100, 2, 50.0, True),
        (2, 100, 2, 50.0, False),
        (5, 5, 0, 100.0, False),  # 100 %: never fails
    ],
)
def test_a_map_run_fails_when_its_failures_exceed_a_tolerated_threshold(
    failed: int, total: int, count: int, percentage: float, fails: bool
) -> None:
    assert exceeds_tolerated_failures(failed, total, count, percentage) is fails

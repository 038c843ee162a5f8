"""The template passes both linters with no finding at all, and samconfig.toml is what SAM users expect."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.template.conftest import ATTACHED_STREAMS

pytestmark = pytest.mark.template


def test_sam_validate_lint_is_clean(sam_bin: Path, repo_root: Path, sam_env: dict[str, str]) -> None:
    # GIVEN the SAM CLI and the repository's template
    command = [str(sam_bin), "validate", "--lint", "--template", "template.yaml"]

    # WHEN `sam validate --lint` runs on it
    completed = subprocess.run(
        command, capture_output=True, text=True, env=sam_env, cwd=repo_root, timeout=300, check=False
    )

    # THEN it reports a valid template and nothing else
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert completed.stdout.strip().endswith("template.yaml is a valid SAM Template"), output
    assert len(completed.stdout.strip().splitlines()) == 1, output  # any lint finding adds lines


def test_cfn_lint_has_zero_findings_including_informational(repo_root: Path) -> None:
    # GIVEN the dev environment's cfn-lint, with informational checks switched on as well
    from cfnlint.api import lint_file

    # WHEN it lints the template
    matches = lint_file(repo_root / "template.yaml", {"include_checks": ["I"], "regions": ["us-east-1"]})

    # THEN there is no error, no warning and no informational finding
    assert [str(match) for match in matches] == []


def test_both_linters_are_clean_with_attached_tables(
    sam_bin: Path, repo_root: Path, sam_env: dict[str, str], tmp_path: Path
) -> None:
    # GIVEN the template with SourceStreamArns naming two streams (as its default, so that the
    # linters, which take no parameter values, evaluate Fn::ForEach over them)
    text = (repo_root / "template.yaml").read_text(encoding="utf-8")
    declaration = '  SourceStreamArns:\n    Type: CommaDelimitedList\n    Default: ""\n'
    assert declaration in text
    attached = tmp_path / "template.yaml"
    value = ",".join(ATTACHED_STREAMS)
    attached.write_text(text.replace(declaration, declaration.replace('""', value)), encoding="utf-8")
    from cfnlint.api import lint_file

    # WHEN `sam validate --lint` and cfn-lint (informational checks on) check it
    completed = subprocess.run(
        [str(sam_bin), "validate", "--lint", "--template", str(attached)],
        capture_output=True,
        text=True,
        env=sam_env,
        cwd=repo_root,
        timeout=300,
        check=False,
    )
    matches = lint_file(attached, {"include_checks": ["I"], "regions": ["us-east-1"]})

    # THEN neither finds anything
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert len(completed.stdout.strip().splitlines()) == 1, completed.stdout
    assert [str(match) for match in matches] == []


def test_samconfig_deploys_default_and_prod_stacks(repo_root: Path) -> None:
    # GIVEN samconfig.toml
    with (repo_root / "samconfig.toml").open("rb") as handle:
        config = tomllib.load(handle)

    # WHEN its environments are read
    default, prod = config["default"], config["prod"]

    # THEN `sam build && sam deploy` and `sam deploy --config-env prod` target separate stacks,
    # ask before changing anything, create IAM roles, and lint on validate
    assert config["version"] == 0.1
    assert default["global"]["parameters"]["stack_name"] == "changelake"
    assert prod["global"]["parameters"]["stack_name"] == "changelake-prod"
    # (the template's AWS::LanguageExtensions expanded by `sam build`, as CloudFormation does)
    for environment in (default, prod):
        assert environment["build"]["parameters"] == {
            "cached": True,
            "parallel": True,
            "language_extensions": True,
        }
    assert default["validate"]["parameters"]["lint"] is True
    for environment in (default, prod):
        deploy = environment["deploy"]["parameters"]
        assert "CAPABILITY_IAM" in deploy["capabilities"].split()
        assert deploy["confirm_changeset"] is True
        assert deploy["resolve_s3"] is True
        assert deploy["region"]
        assert all("=" in override for override in deploy["parameter_overrides"])
    assert "LogLevel=WARNING" in prod["deploy"]["parameters"]["parameter_overrides"]


def test_ci_tests_the_python_lambda_runs_and_the_oldest_the_code_supports(
    repo_root: Path, resources: dict[str, Any]
) -> None:
    # GIVEN the test workflow, the functions' runtime and the oldest Python the packages declare
    workflow = yaml.safe_load((repo_root / ".github/workflows/test.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["make-test"]
    runtimes = {
        resource["Properties"]["Runtime"]
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function" and "Runtime" in resource["Properties"]
    }
    with (repo_root / "pyproject.toml").open("rb") as handle:
        oldest = tomllib.load(handle)["project"]["requires-python"].removeprefix(">=")

    # WHEN the Pythons its job runs on are read
    pythons = set(job["strategy"]["matrix"]["python"])

    # THEN it runs the tests on each function's runtime and on the oldest supported Python, in the
    # Debian image of that Python
    assert {runtime.removeprefix("python") for runtime in runtimes} | {oldest} <= pythons
    assert job["container"] == "python:${{ matrix.python }}-bookworm"
